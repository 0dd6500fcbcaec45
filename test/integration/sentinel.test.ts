import { Redis } from 'ioredis';
import type { ConfigInput } from '../../shared/platform/config/schema';
import { unfinishedJobs } from '../../shared/core/queue';
import { esUrl, uniqueIndex } from '../support/elasticsearch';
import { getDoc, startPipeline, waitFor, waitInSync, type TestPipeline } from '../support/pipeline';
import { startSentinelGroup, type SentinelGroupHandle } from '../support/redis-sentinel';
import { persist } from '../support/persist';

const KEYS = 3000;


async function writeKeys(redis: Redis, round: number): Promise<void> {
  for (let i = 0; i < KEYS; i += 300) {
    const batch: Promise<void>[] = [];
    for (let j = i; j < i + 300; j++) {
      if (j % 10 === round) batch.push(persist(() => redis.del(`user:${j}`)));
      else batch.push(persist(() => redis.hset(`user:${j}`, { n: String(j), round: String(round) })));
    }
    await Promise.all(batch);
  }
}

describe('a source and queue followed through Redis Sentinel', () => {
  let group: SentinelGroupHandle;
  let redis: Redis;
  let pipeline: TestPipeline | undefined;

  beforeAll(async () => {
    group = await startSentinelGroup();
  });

  afterAll(async () => {
    await pipeline?.stop();
    redis?.disconnect();
    await group?.stop();
  });

  it('keeps syncing across a SENTINEL FAILOVER', async () => {
    const sentinel = { sentinels: [group.sentinelAddr], name: group.name };
    redis = new Redis({ sentinels: [{ host: '127.0.0.1', port: Number(group.sentinelAddr.split(':')[1]) }], name: group.name, failoverDetector: true });
    const input: ConfigInput = {
      logLevel: (process.env.TEST_LOG_LEVEL as ConfigInput['logLevel']) ?? 'silent',
      redis: { sentinel },
      queue: { sentinel },
      elasticsearch: { url: esUrl() },
      mapping: { defaultIndex: uniqueIndex('sentinel') },
      producer: { reconcileIntervalMs: 0 },
      worker: { lockDurationMs: 4000, stalledIntervalMs: 1000, retryBaseMs: 50, retryMaxMs: 1000 },
    };
    await writeKeys(redis, 0);
    pipeline = await startPipeline(input);
    await writeKeys(redis, 1);
    const queue = pipeline.ctx.queue();
    await waitFor('queue drained', () => unfinishedJobs(queue), (n) => n === 0, 60000, 250);
    await waitInSync(pipeline.ctx, 60000);

    const oldMaster = await group.masterPort();
    // The replica must hold every queued job before it takes over: replication is asynchronous.
    await redis.call('WAIT', '1', '5000');
    const newMaster = await group.failover();
    expect(newMaster).not.toBe(oldMaster);

    await writeKeys(redis, 2);
    await persist(() => redis.hset('user:after-failover', { n: 'new' }));
    await waitFor('a change after the failover to be indexed', () => getDoc(pipeline!.ctx, input.mapping!.defaultIndex!, 'user:after-failover'), (d) => d !== undefined, 60000, 200);
    await waitFor('queue drained', () => unfinishedJobs(queue), (n) => n === 0, 60000, 250);
    const report = await waitInSync(pipeline.ctx, 60000);
    expect(report.checked).toBe(KEYS - KEYS / 10 + 1);
    expect(pipeline.ctx.source.isCluster).toBe(false);
  });
});
