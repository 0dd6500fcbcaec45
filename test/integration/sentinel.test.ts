import { Redis } from 'ioredis';
import type { ConfigInput } from '../../producers/capture/registry';
import { unfinishedJobs } from '../../shared/core/queue';
import { missingNotifyFlags } from '../../producers/capture/notifications/notify-flags';
import { esUrl, uniqueIndex } from '../support/elasticsearch';
import { getDoc, startPipeline, waitFor, waitInSync, type TestPipeline } from '../support/pipeline';
import { startSentinelGroup, type SentinelGroupHandle, type SentinelGroupOptions } from '../support/redis-sentinel';
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
  const groups: SentinelGroupHandle[] = [];
  const pipelines: TestPipeline[] = [];
  const clients: Redis[] = [];

  afterEach(async () => {
    await Promise.all(pipelines.splice(0).map((p) => p.stop()));
    for (const c of clients.splice(0)) c.disconnect();
    await Promise.all(groups.splice(0).map((g) => g.stop()));
  });

  /**
   * Syncs, fails over, then writes on the new master: asked of the sentinel by port, not through
   * a Sentinel-following client, which may still be on the old master for a moment after the
   * sentinel names the new one, and writes the old master acknowledges then are discarded when
   * it is demoted (asynchronous replication), so the change under test might never exist.
   */
  async function syncAcrossFailover(
    opts: SentinelGroupOptions & { silenceDetectors?: boolean; configureNotifications?: boolean },
  ): Promise<void> {
    const group = await startSentinelGroup(opts);
    groups.push(group);
    const sentinel = { sentinels: [group.sentinelAddr], name: group.name };
    const redis = new Redis({
      sentinels: [{ host: '127.0.0.1', port: Number(group.sentinelAddr.split(':')[1]) }],
      name: group.name,
      failoverDetector: true,
    });
    clients.push(redis);
    const input: ConfigInput = {
      logLevel: (process.env.TEST_LOG_LEVEL as ConfigInput['logLevel']) ?? 'silent',
      redis: { sentinel },
      queue: { sentinel },
      elasticsearch: { url: esUrl() },
      mapping: { defaultIndex: uniqueIndex('sentinel') },
      producer: { reconcileIntervalMs: 0, configureNotifications: opts.configureNotifications ?? false },
      worker: { lockDurationMs: 4000, stalledIntervalMs: 1000, retryBaseMs: 50, retryMaxMs: 1000 },
    };
    await writeKeys(redis, 0);
    const pipeline = await startPipeline(input);
    pipelines.push(pipeline);
    await writeKeys(redis, 1);
    const queue = pipeline.ctx.queues().partitions[0]!;
    await waitFor(
      'queue drained',
      () => unfinishedJobs(queue),
      (n) => n === 0,
      60000,
      250,
    );
    await waitInSync(pipeline.ctx, 60000);

    const oldMaster = await group.masterPort();
    // The replica must hold every queued job before it takes over: replication is asynchronous.
    await redis.call('WAIT', '1', '5000');
    if (opts.silenceDetectors) await group.silenceFailoverDetectors();
    const newMaster = await group.failover();
    expect(newMaster).not.toBe(oldMaster);

    const onNewMaster = new Redis(newMaster, '127.0.0.1', { maxRetriesPerRequest: 1 });
    clients.push(onNewMaster);
    await writeKeys(onNewMaster, 2);
    await persist(() => onNewMaster.hset('user:after-failover', { n: 'new' }));
    await waitFor(
      'a change after the failover to be indexed',
      () => getDoc(pipeline.ctx, input.mapping!.defaultIndex!, 'user:after-failover'),
      (d) => d !== undefined,
      60000,
      200,
    );
    await waitFor(
      'queue drained',
      () => unfinishedJobs(queue),
      (n) => n === 0,
      60000,
      250,
    );
    // Now that the pipeline has moved (the change above reached the index), a change must
    // reach it through notifications alone: no reconciliation is pending any more.
    await persist(() => onNewMaster.hset('user:after-move', { n: 'later' }));
    await waitFor(
      'a change on the new master, once followed, to be indexed',
      () => getDoc(pipeline.ctx, input.mapping!.defaultIndex!, 'user:after-move'),
      (d) => d !== undefined,
      60000,
      200,
    );
    expect(missingNotifyFlags((await onNewMaster.config('GET', 'notify-keyspace-events'))[1] ?? '')).toEqual([]);
    await waitFor(
      'queue drained',
      () => unfinishedJobs(queue),
      (n) => n === 0,
      60000,
      250,
    );
    const report = await waitInSync(pipeline.ctx, 60000);
    expect(report.checked).toBe(KEYS - KEYS / 10 + 2);
    expect(pipeline.ctx.source.isCluster).toBe(false);
  }

  it('keeps syncing across a SENTINEL FAILOVER', async () => {
    await syncAcrossFailover({});
  });

  // The old master stays a writable master (the sentinel cannot demote it, as in a partition)
  // and no +switch-master reaches ioredis's failover detectors: nothing disconnects the
  // producer's subscription, which would hear nothing of the writes on the new master. The
  // comparison of run_ids with the sentinel's view must move it there and reconcile the gap.
  // And notify-keyspace-events is set by the tool (configureNotifications): CONFIG SET is not
  // replicated, so the promoted replica publishes nothing until the tool sets it there too.
  it('keeps syncing when the failover detectors miss the failover and the old master stays up', async () => {
    await syncAcrossFailover({
      undemotableMaster: true,
      silenceDetectors: true,
      notifyKeyspaceEvents: '',
      configureNotifications: true,
    });
  });
});
