import { Redis } from 'ioredis';
import { unfinishedJobs } from '../../shared/core/queue';
import { testElasticsearch } from '../support/elasticsearch';
import {
  getDoc,
  startPipeline,
  startServers,
  testConfigInput,
  waitFor,
  waitInSync,
  type TestPipeline,
  type TestServers,
} from '../support/pipeline';

const KEYS = 2000;

/**
 * Elasticsearch is stopped (the real process, through dev-stack.sh) while changes keep
 * coming, then started again: the jobs wait and retry instead of failing, and once it is back
 * every change made during the outage is in the index.
 */
describe('Elasticsearch stopped for a while and started again', () => {
  let servers: TestServers;
  let pipeline: TestPipeline | undefined;
  let redis: Redis;
  let esDown = false;

  beforeAll(async () => {
    servers = await startServers('outage');
    redis = new Redis(servers.source.url);
    const pipe = redis.pipeline();
    for (let i = 0; i < KEYS; i++) pipe.hset(`user:${i}`, { name: `user ${i}`, visits: '0' });
    await pipe.exec();
  });

  afterAll(async () => {
    if (esDown) testElasticsearch('up');
    await pipeline?.stop();
    redis.disconnect();
    await servers.stop();
  });

  it('loses nothing and fails no job', async () => {
    pipeline = await startPipeline(testConfigInput(servers));
    const { ctx } = pipeline;
    await waitInSync(ctx);

    testElasticsearch('down');
    esDown = true;
    for (let i = 0; i < KEYS; i += 4) await redis.hset(`user:${i}`, 'visits', '1');
    for (let i = 1; i < KEYS; i += 50) await redis.del(`user:${i}`);
    await redis.set('created-during-outage', 'yes');
    const queue = ctx.queues().partitions[0]!;
    // The changes are queued and being retried, not failed.
    await waitFor(
      'changes queued during the outage',
      () => unfinishedJobs(queue),
      (n) => n > 0,
      10000,
    );
    await new Promise((r) => setTimeout(r, 3000));
    expect(await queue.getFailedCount()).toBe(0);

    testElasticsearch('up');
    esDown = false;
    await waitFor(
      'queue drained',
      () => unfinishedJobs(queue),
      (n) => n === 0,
      120000,
      250,
    );
    const report = await waitInSync(ctx, 60000);
    expect(report.checked).toBe(KEYS - KEYS / 50 + 1);
    expect(await queue.getFailedCount()).toBe(0);
    expect((await getDoc(ctx, servers.index, 'user:0'))?.value).toEqual({ name: 'user 0', visits: '1' });
    expect(await getDoc(ctx, servers.index, 'user:1')).toBeUndefined();
    expect((await getDoc(ctx, servers.index, 'created-during-outage'))?.value).toBe('yes');
  });
});
