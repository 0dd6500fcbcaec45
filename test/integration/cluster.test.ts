import { Cluster, Redis } from 'ioredis';
import type { ConfigInput } from '../../producers/capture/registry';
import { unfinishedJobs } from '../../shared/core/queue';
import { esUrl, uniqueIndex } from '../support/elasticsearch';
import {
  exited,
  formatReport,
  spawnCli,
  startPipeline,
  waitFor,
  waitInSync,
  type TestPipeline,
} from '../support/pipeline';
import { startRedisCluster, type RedisClusterHandle } from '../support/redis-cluster';
import { persist } from '../support/persist';

const SEEDED = 20000;
const LIVE_OPS = 24000;
/** Hash-tagged, so every BullMQ key of the queue shares one slot of the cluster. */
const PREFIX = '{res}';

const TYPES = ['str', 'hash', 'list', 'set', 'zset', 'stream'] as const;

/** Writes key `i` of the mixed keyspace: its type follows from its number. */
function write(redis: Cluster, i: number, round: number): Promise<unknown> {
  const type = TYPES[i % TYPES.length]!;
  const key = `${type}:${i}`;
  const v = `v${round}-${i}`;
  switch (type) {
    case 'str':
      return redis.set(key, JSON.stringify({ n: i, v }));
    case 'hash':
      return redis.hset(key, { n: String(i), v, [`f${round % 5}`]: v });
    case 'list':
      return redis.multi().rpush(key, v).ltrim(key, -5, -1).exec();
    case 'set':
      return redis.sadd(key, v);
    case 'zset':
      return redis.zadd(key, round, v);
    case 'stream':
      return redis.xadd(key, 'MAXLEN', '5', '*', 'v', v);
  }
}

/** One live operation: mostly writes, some deletes, expiries and same-slot renames. */
async function liveOp(redis: Cluster, op: number): Promise<void> {
  const i = (op * 7919) % SEEDED;
  switch (op % 10) {
    case 7:
      await redis.del(`${TYPES[i % TYPES.length]}:${i}`);
      return;
    case 8:
      await redis.set(`ttl:${op % 500}`, String(op), 'PX', 300 + (op % 1500));
      return;
    case 9:
      // RENAME needs both keys in one slot: a hash tag per pair.
      await redis.set(`ren:{${op % 300}}:a`, String(op));
      await redis.rename(`ren:{${op % 300}}:a`, `ren:{${op % 300}}:b`);
      return;
    default:
      await write(redis, i, op);
  }
}

async function runOps(redis: Cluster, from: number, to: number): Promise<void> {
  for (let op = from; op < to; op += 200) {
    const ops: Promise<void>[] = [];
    for (let j = op; j < Math.min(op + 200, to); j++) ops.push(persist(() => liveOp(redis, j)));
    await Promise.all(ops);
  }
}

/** Port of the replica of a master that does not hold the queue's slot (the queue stays put). */
async function replicaToPromote(redis: Cluster): Promise<{ master: number; replica: number }> {
  const queueSlot = await redis.cluster('KEYSLOT', PREFIX);
  const slots = await redis.cluster('SLOTS');
  const queueMaster = slots.find(([from, to]) => queueSlot >= from && queueSlot <= to)![2]![1];
  const other = slots.find((s) => s[2]![1] !== queueMaster && s.length > 3)!;
  return { master: other[2]![1], replica: other[3]![1] };
}

describe('a Redis Cluster source (3 masters + 3 replicas), queue in the same cluster', () => {
  let cluster: RedisClusterHandle;
  let redis: Cluster;
  let worker: TestPipeline | undefined;
  let producer: ReturnType<typeof spawnCli> | undefined;
  let input: ConfigInput;

  beforeAll(async () => {
    cluster = await startRedisCluster({ masters: 3, replicasPerMaster: 1 });
    redis = new Cluster(cluster.urls.map((url) => ({ host: '127.0.0.1', port: Number(new URL(url).port) })));
    input = {
      logLevel: (process.env.TEST_LOG_LEVEL as ConfigInput['logLevel']) ?? 'silent',
      redis: { cluster: { nodes: cluster.urls.slice(0, 2) } },
      queue: { cluster: { nodes: cluster.urls.slice(0, 2) }, prefix: PREFIX },
      elasticsearch: { url: esUrl() },
      mapping: { defaultIndex: uniqueIndex('cluster') },
      producer: { reconcileIntervalMs: 0, topologyRefreshMs: 500 },
      worker: { lockDurationMs: 4000, stalledIntervalMs: 1000, retryBaseMs: 50, retryMaxMs: 1000 },
    };
  });

  afterAll(async () => {
    producer?.kill('SIGKILL');
    if (producer) await exited(producer);
    await worker?.stop();
    redis?.disconnect();
    await cluster?.stop();
  });

  async function respawnProducer(): Promise<void> {
    producer = spawnCli(input, ['producer']);
    await waitFor(
      'the producer to subscribe on every master',
      async () => producer!.output(),
      (o) => o.includes('capturing keyspace notifications') || producer!.exitCode !== null,
      30000,
    );
    expect(producer.exitCode).toBeNull();
  }

  it('snapshots, follows live writes through a producer crash and a failover, and verifies in sync', async () => {
    for (let i = 0; i < SEEDED; i += 500) {
      const batch: Promise<unknown>[] = [];
      for (let j = i; j < i + 500; j++) batch.push(write(redis, j, 0));
      await Promise.all(batch);
    }
    input = { ...input, logLevel: 'info' };
    worker = await startPipeline({ ...input, logLevel: 'silent' }, { producer: false, worker: true });
    await respawnProducer();

    await runOps(redis, 0, LIVE_OPS / 4);
    // A crash, not a shutdown: whatever it had not enqueued, and every change until it is
    // back, must be recovered by the reconciliation the new producer starts with.
    producer!.kill('SIGKILL');
    await exited(producer!);
    await runOps(redis, LIVE_OPS / 4, LIVE_OPS / 2);
    await respawnProducer();

    const { master, replica } = await replicaToPromote(redis);
    const failover = (async () => {
      await new Promise((r) => setTimeout(r, 300));
      const node = new Redis(replica, '127.0.0.1');
      try {
        await node.cluster('FAILOVER');
      } finally {
        node.disconnect();
      }
    })();
    await runOps(redis, LIVE_OPS / 2, LIVE_OPS);
    await failover;
    await waitFor(
      'the replica to be promoted',
      () => cluster.role(replica),
      (r) => r === 'master',
      30000,
    );
    expect(await cluster.role(master)).toBe('replica');
    await cluster.waitHealthy();
    // Writes on the new master must be seen live, through the subscription the producer
    // opened when it noticed the promotion.
    await runOps(redis, LIVE_OPS, LIVE_OPS + 2000);

    const queue = worker.ctx.queues().partitions[0]!;
    await waitFor(
      'queue drained',
      () => unfinishedJobs(queue),
      (n) => n === 0,
      120000,
      250,
    );
    const report = await waitInSync(worker.ctx, 120000);
    expect(report.checked).toBeGreaterThan(SEEDED / 2);
    expect(producer!.output()).toMatch(/new masters subscribed/);

    const verifier = spawnCli(input, ['verify', '--settle-ms', '2000']);
    expect(await exited(verifier)).toBe(0);
    expect(verifier.output()).toMatch(/missing 0, stale 0, extra 0/);
    process.stdout.write(`cluster: ${formatReport(report)}\n`);
  });

  it('keeps keys correct while resharding moves their slots to another master', async () => {
    const [from, to] = await cluster.masterPorts();
    const reshard = cluster.reshard(from!, to!, 600);
    // Writes race the migration: reads of the keys being moved follow ASK redirections.
    let op = 100000;
    let moving = true;
    void reshard.finally(() => (moving = false));
    while (moving) {
      await runOps(redis, op, op + 1000);
      op += 1000;
    }
    await reshard;
    await cluster.waitHealthy();
    // Keys now on the receiving master change again: seen live, nothing to reconcile.
    await runOps(redis, op, op + 3000);

    const queue = worker!.ctx.queues().partitions[0]!;
    await waitFor(
      'queue drained',
      () => unfinishedJobs(queue),
      (n) => n === 0,
      120000,
      250,
    );
    const report = await waitInSync(worker!.ctx, 120000);
    expect(report.checked).toBeGreaterThan(SEEDED / 2);
    process.stdout.write(`after resharding: ${formatReport(report)}\n`);
  });

  it('refuses a master without the notification flags, naming it, unless allowed to set them', async () => {
    const port = (await cluster.masterPorts())[0]!;
    const node = new Redis(port, '127.0.0.1');
    try {
      await node.config('SET', 'notify-keyspace-events', '');
      // A queue prefix of its own: the producer of the tests above still holds theirs' lease.
      const strict = {
        ...input,
        logLevel: 'silent' as const,
        mapping: { defaultIndex: uniqueIndex('cluster-flags') },
        queue: { ...input.queue, prefix: '{res-flags}' },
      };
      await expect(startPipeline(strict, { producer: true, worker: false })).rejects.toThrow(
        new RegExp(`cluster master 127\\.0\\.0\\.1:${port}: the source Redis does not publish the keyspace events`),
      );
      const lenient = await startPipeline(
        { ...strict, producer: { ...strict.producer, configureNotifications: true } },
        { producer: true, worker: false },
      );
      await lenient.stop();
      const [, flags] = await node.config('GET', 'notify-keyspace-events');
      expect(flags!.length).toBeGreaterThan(0);
    } finally {
      await node.config('SET', 'notify-keyspace-events', 'KEA');
      node.disconnect();
    }
  });
});
