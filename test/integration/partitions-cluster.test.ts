import { Redis } from 'ioredis';
import { createChangeSink } from '../../producers/change-sink';
import { snapshot } from '../../producers/snapshot';
import { unfinishedJobs } from '../../shared/core/queue';
import { partitionSlot, partitionQueues } from '../../shared/core/partitions';
import type { ConfigInput } from '../../producers/capture/registry';
import { jobsEnqueued, keysEnqueued } from '../../shared/platform/metrics';
import { esUrl, uniqueIndex } from '../support/elasticsearch';
import { formatReport, startPipeline, waitFor, waitInSync, type TestPipeline } from '../support/pipeline';
import { startRedisCluster, type RedisClusterHandle } from '../support/redis-cluster';
import { startRedis, type RedisServerHandle } from '../support/redis-server';

const KEYS = 100_000;
const LIVE = 10_000;
const PARTITIONS = 6;
const PREFIX = '{res-parts}';

/** Commands that are the clients' housekeeping, not the queue's work (this test's own INFO among them). */
const HOUSEKEEPING = new Set(['info', 'config', 'cluster', 'ping', 'client', 'hello', 'select', 'command', 'readonly']);

async function queueCommands(node: Redis): Promise<number> {
  const text = await node.info('commandstats');
  let total = 0;
  for (const [, command, calls] of text.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm))
    if (command !== undefined && !HOUSEKEEPING.has(command.split('|')[0]!)) total += Number(calls);
  return total;
}

describe('partitioned queues on a 3-master Redis Cluster', () => {
  let cluster: RedisClusterHandle;
  let source: RedisServerHandle;
  let redis: Redis;
  let masters: Redis[] = [];
  let pipeline: TestPipeline | undefined;

  beforeAll(async () => {
    [cluster, source] = await Promise.all([
      startRedisCluster({ masters: 3, replicasPerMaster: 0 }),
      startRedis({ notifyKeyspaceEvents: 'KEA' }),
    ]);
    redis = new Redis(source.url);
    masters = (await cluster.masterPorts()).map((port) => new Redis(port, '127.0.0.1'));
  });

  afterAll(async () => {
    await pipeline?.stop();
    redis?.disconnect();
    for (const m of masters) m.disconnect();
    await Promise.all([cluster?.stop(), source?.stop()]);
  });

  it('puts the partitions on every master: the tags are steered to slots two per master', async () => {
    const slotsOf = await masters[0]!.cluster('SLOTS');
    const masterOfSlot = (slot: number): number => slotsOf.find(([from, to]) => slot >= from && slot <= to)![2]![1];
    const perMaster = new Map<number, number>();
    for (const q of partitionQueues(PREFIX, 'changes', PARTITIONS)) {
      const port = masterOfSlot(partitionSlot(q));
      perMaster.set(port, (perMaster.get(port) ?? 0) + 1);
      // What the cluster itself says of the queue's keys.
      expect(await masters[0]!.cluster('KEYSLOT', `${q.prefix}:${q.name}:wait`)).toBe(partitionSlot(q));
    }
    expect([...perMaster.values()]).toEqual([2, 2, 2]);
  });

  it('spreads the jobs of a 100,000-key snapshot and of live changes over the three masters, in sync afterwards', async () => {
    for (let i = 0; i < KEYS; i += 5000) {
      const pipe = redis.pipeline();
      for (let j = i; j < i + 5000; j++) pipe.set(`user:${j}`, JSON.stringify({ n: j, v: 0 }));
      await pipe.exec();
    }
    await Promise.all(masters.map((m) => m.config('RESETSTAT')));
    const input: ConfigInput = {
      logLevel: (process.env.TEST_LOG_LEVEL as ConfigInput['logLevel']) ?? 'silent',
      redis: { url: source.url },
      queue: { cluster: { nodes: cluster.urls.slice(0, 2) }, prefix: PREFIX, partitions: PARTITIONS },
      elasticsearch: { url: esUrl() },
      mapping: { defaultIndex: uniqueIndex('partitions-cluster') },
      producer: { reconcileIntervalMs: 0, deletionGuard: { maxShare: 1 } },
      worker: { lockDurationMs: 4000, stalledIntervalMs: 1000, retryBaseMs: 50, retryMaxMs: 1000 },
    };
    pipeline = await startPipeline(input);
    const { ctx } = pipeline;

    const sink = createChangeSink(ctx.config, ctx.queues(), ctx.queueRedis, ctx.logger, ctx.router);
    const live = (async () => {
      for (let op = 0; op < LIVE; op += 500) {
        const pipe = redis.pipeline();
        for (let j = op; j < op + 500; j++) {
          const i = (j * 7919) % KEYS;
          if (j % 10 === 9) pipe.del(`user:${i}`);
          else pipe.set(`user:${i}`, JSON.stringify({ n: i, v: j }));
        }
        await pipe.exec();
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    const result = await snapshot(
      { source: ctx.source, queueRedis: ctx.queueRedis, sink, logger: ctx.logger },
      {
        databases: [0],
        patterns: ['*'],
        scanCount: 1000,
        batchKeys: 500,
        prefix: PREFIX,
        resume: false,
        src: 'snapshot',
      },
    );
    await live;
    expect(result.keys).toBeGreaterThanOrEqual(KEYS - LIVE / 10);

    await waitFor(
      'every partition drained',
      () => unfinishedJobs(ctx.queues()),
      (n) => n === 0,
      300_000,
      500,
    );
    const report = await waitInSync(ctx, 120_000);
    expect(report.checked).toBeGreaterThan(KEYS * 0.85);

    const perMaster = await Promise.all(masters.map(queueCommands));
    const total = perMaster.reduce((a, b) => a + b, 0);
    const sum = async (m: typeof jobsEnqueued): Promise<number> =>
      (await m.get()).values.reduce((a, v) => a + v.value, 0);
    const [jobs, keys] = [await sum(jobsEnqueued), await sum(keysEnqueued)];
    process.stdout.write(
      `${jobs} jobs, ${keys} keys enqueued (reconciliation at start included); ` +
        `${(total / jobs).toFixed(1)} commands per job, ${(total / keys).toFixed(2)} per key\n` +
        `queue commands per master (P=${PARTITIONS}): ${perMaster.join(', ')} of ${total} ` +
        `(${perMaster.map((n) => `${((100 * n) / total).toFixed(1)}%`).join(', ')}); ${formatReport(report)}\n`,
    );
    for (const n of perMaster) {
      expect(n).toBeGreaterThan(total / 10);
      expect(n).toBeLessThanOrEqual(total / 2);
    }
    for (const q of ctx.queues().partitions) expect(await unfinishedJobs(q)).toBe(0);
  }, 600_000);
});
