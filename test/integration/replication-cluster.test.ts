import { Cluster, Redis } from 'ioredis';
import type { CaptureHost } from '../../producers/capture/host';
import type { ConfigInput } from '../../producers/capture/registry';
import { checkpointIndexKey, checkpointKey } from '../../producers/capture/replication/checkpoint';
import type { ReplicationMode } from '../../producers/capture/replication/mode';
import type { LeasedProducer } from '../../producers/leased-producer';
import { shardLeaseKeys } from '../../producers/lease';
import { esUrl, uniqueIndex } from '../support/elasticsearch';
import { expectNothingMissing, killAll, type Cli } from '../support/handover';
import { persist } from '../support/persist';
import { exited, spawnCli, startPipeline, waitFor, type TestPipeline } from '../support/pipeline';
import { startRedisCluster, type RedisClusterHandle } from '../support/redis-cluster';
import { startRedis, type RedisServerHandle } from '../support/redis-server';

/** Keys over every master's slots: hashes and strings, every 7th round a delete. */
function round(redis: Cluster, i: number): Promise<unknown> {
  return Promise.all([
    persist(() => redis.hset(`user:${i % 400}`, { n: String(i) })),
    persist(() => redis.set(`seq:${i % 3000}`, String(i))),
    i % 7 === 0 ? persist(() => redis.del(`user:${(i * 13) % 400}`)) : undefined,
  ]);
}

async function rounds(redis: Cluster, from: number, to: number): Promise<void> {
  for (let i = from; i < to; i += 50) {
    const batch: Promise<unknown>[] = [];
    for (let j = i; j < Math.min(i + 50, to); j++) batch.push(round(redis, j));
    await Promise.all(batch);
  }
}

/** The masters' node IDs now, by port. */
async function masterIds(cluster: RedisClusterHandle): Promise<Map<number, string>> {
  const ids = new Map<number, string>();
  for (const port of await cluster.masterPorts()) {
    const r = new Redis(port, '127.0.0.1');
    ids.set(port, (await r.cluster('MYID')).trim());
    r.disconnect();
  }
  return ids;
}

/** Promotes the replica of one master (CLUSTER FAILOVER on the replica) and waits for the cluster to settle. */
async function failover(cluster: RedisClusterHandle): Promise<{ master: number; replica: number }> {
  const masters = await cluster.masterPorts();
  const moved = await cluster.failover();
  expect(masters).toContain(moved.master);
  return moved;
}

interface LogLine {
  msg?: string;
  shard?: string;
}

/** The shards a producer's log says it captures now. */
function capturing(c: Cli): Set<string> {
  const held = new Set<string>();
  for (const line of c.output().split('\n')) {
    if (!line.startsWith('{')) continue;
    let l: LogLine;
    try {
      l = JSON.parse(line) as LogLine;
    } catch {
      continue;
    }
    if (l.shard === undefined) continue;
    if (l.msg === 'shard capture started under its lease') held.add(l.shard);
    if (l.msg === 'giving up a shard: stopping its capture') held.delete(l.shard);
  }
  return held;
}

/** Every master held by one of `live`, `spread` shards each, each producer capturing exactly what it holds. */
function settled(live: Cli[], spread: number[]): (h: Map<string, number | undefined>) => boolean {
  return (h) => {
    const pids = [...h.values()];
    if (pids.some((p) => p === undefined || !live.some((c) => c.pid === p))) return false;
    const counts = live.map((c) => pids.filter((p) => p === c.pid).length).sort((x, y) => y - x);
    if (JSON.stringify(counts) !== JSON.stringify(spread)) return false;
    return live.every((c) => {
      const mine = [...h].filter(([, p]) => p === c.pid).map(([s]) => s);
      const logged = capturing(c);
      return logged.size === mine.length && mine.every((s) => logged.has(s));
    });
  };
}

describe('replication mode on a 3-master Redis Cluster source', () => {
  let cluster: RedisClusterHandle;
  let queue: RedisServerHandle;
  let redis: Cluster;
  let queueRedis: Redis;
  let worker: TestPipeline | undefined;
  let pipeline: TestPipeline | undefined;
  const children: Cli[] = [];
  const base = (name: string, prefix: string): ConfigInput => ({
    logLevel: (process.env.TEST_LOG_LEVEL as ConfigInput['logLevel']) ?? 'silent',
    redis: { cluster: { nodes: cluster.urls.slice(0, 2) } },
    queue: { url: queue.url, prefix },
    elasticsearch: { url: esUrl() },
    mapping: { defaultIndex: uniqueIndex(name) },
    producer: {
      mode: 'replication',
      leaseTtlMs: 3000,
      leaseRenewMs: 500,
      deletionGuard: { maxShare: 1 },
      topologyRefreshMs: 500,
    },
    worker: { lockDurationMs: 4000, stalledIntervalMs: 1000, retryBaseMs: 50, retryMaxMs: 1000 },
  });

  beforeAll(async () => {
    [cluster, queue] = await Promise.all([
      startRedisCluster({ masters: 3, replicasPerMaster: 1, nodeTimeoutMs: 15000 }),
      startRedis(),
    ]);
    // Right after creation a replica may still list itself as a master: start on the settled topology.
    await cluster.waitHealthy();
    // The failover case asserts PSYNC continuation: the backlog must outlast the test's write burst
    // (the default 1 MB fills in about a second here); a shorter one would fall back to a full resync.
    for (const n of cluster.nodes) {
      const r = new Redis(n.port, '127.0.0.1');
      await r.config('SET', 'repl-backlog-size', String(64 * 1024 * 1024));
      r.disconnect();
    }
    redis = new Cluster(cluster.urls.map((url) => ({ host: '127.0.0.1', port: Number(new URL(url).port) })));
    queueRedis = new Redis(queue.url);
  });

  afterAll(async () => {
    await killAll(children);
    await pipeline?.stop();
    await worker?.stop();
    redis?.disconnect();
    queueRedis?.disconnect();
    await Promise.all([cluster?.stop(), queue?.stop()]);
  });

  it('one producer replicates every master, each from its own checkpoint; a CLUSTER FAILOVER during writes continues the stream from the old master’s checkpoint', async () => {
    const prefix = 'repl-cluster-one';
    await rounds(redis, 0, 2000);
    pipeline = await startPipeline(base('repl-cluster-one', prefix));
    const mode = ((pipeline.service.producer as LeasedProducer).current as CaptureHost<ReplicationMode>).mode;
    await mode.idle();
    const ids = await masterIds(cluster);
    expect(mode.masters.sort()).toEqual([...ids.values()].sort());
    expect(mode.fullResyncs).toBe(3);
    await rounds(redis, 2000, 4000);
    await expectNothingMissing(pipeline);
    // Each master's checkpoint, under its own node ID.
    await waitFor(
      'a checkpoint per master',
      async () => Promise.all([...ids.values()].map((id) => queueRedis.hget(checkpointKey(prefix, id), 'offset'))),
      (offsets) => offsets.every((o) => o !== null && Number(o) > 0),
      30000,
    );
    expect((await queueRedis.smembers(checkpointIndexKey(prefix))).sort()).toEqual([...ids.values()].sort());

    let writing = true;
    let n = 4000;
    const writes = (async () => {
      while (writing) {
        await rounds(redis, n, n + 100);
        n += 100;
      }
    })();
    try {
      const { master, replica } = await failover(cluster);
      const promoted = (await masterIds(cluster)).get(replica)!;
      await waitFor(
        `the promoted master ${promoted} replicated, the old one ${ids.get(master)} dropped`,
        async () => mode.masters.sort(),
        (m) => m.includes(promoted) && !m.includes(ids.get(master)!) && m.length === 3,
        // Loose: a former master's link may take up to its 10 s stop bound (mode.ts), under CI load.
        60000,
      );
      await rounds(redis, n, n + 1000);
    } finally {
      writing = false;
      await writes;
    }
    await expectNothingMissing(pipeline);
    // The promoted master held the old one's replication id: its link continued the stream (PSYNC), no snapshot.
    expect(mode.fullResyncs).toBe(3);
    expect(mode.partialResyncs).toBeGreaterThan(0);
    await pipeline.stop();
    pipeline = undefined;
  }, 300000);

  it('two producers in sharded capture: each master replicated by exactly one; a kill -9 hands its masters over; a failover continues the new shard from the old checkpoint', async () => {
    const prefix = 'repl-cluster-sharded';
    const input: ConfigInput = { ...base('repl-cluster-sharded', prefix), logLevel: 'info' };
    input.producer = { ...input.producer, shardedCapture: true };
    worker = await startPipeline({ ...input, logLevel: 'silent' }, { producer: false, worker: true });
    /** Each master's lease holder (by pid), as the queue Redis records it. */
    const holders = async (): Promise<Map<string, number | undefined>> => {
      const ids = [...(await masterIds(cluster)).values()];
      const values = await queueRedis.mget(ids.map((id) => shardLeaseKeys(prefix, id).lease));
      // A token is `<host>:<pid>:<random>:<random>`.
      return new Map(ids.map((id, i) => [id, values[i] ? Number(values[i].split(':').at(-3)) : undefined]));
    };
    const spawn = (): Cli => {
      const c = spawnCli(input, ['producer']);
      children.push(c);
      return c;
    };
    const withLogs = (live: Cli[]) => (err: unknown) => {
      throw new Error(`${(err as Error).message}\n${live.map((c) => c.output().slice(-4000)).join('\n---\n')}`);
    };
    const a = spawn();
    const b = spawn();
    const spread = await waitFor(
      'the three masters spread 2/1 over the two producers',
      holders,
      settled([a, b], [2, 1]),
      90000,
      200,
    ).catch(withLogs([a, b]));
    await rounds(redis, 10000, 12000);
    await expectNothingMissing(worker);

    // kill -9 the producer holding two masters while writes go on: the other takes them over.
    const victim = [...spread.values()].filter((p) => p === a.pid).length === 2 ? a : b;
    const heir = victim === a ? b : a;
    const writes = rounds(redis, 12000, 16000);
    victim.kill('SIGKILL');
    await exited(victim);
    await waitFor('every master held by the survivor', holders, settled([heir], [3]), 90000, 200).catch(
      withLogs([heir]),
    );
    await writes;
    await rounds(redis, 16000, 17000);
    await expectNothingMissing(worker);
    // The taken-over masters continued from the checkpoints the victim saved under its fences: no snapshot.
    expect(heir.output()).toMatch(/continuing after the last checkpoint/);

    // A failover under sharded capture: the promoted master is a new shard, which continues from its old master's checkpoint.
    let writing = true;
    let n = 20000;
    const more = (async () => {
      while (writing) {
        await rounds(redis, n, n + 100);
        n += 100;
      }
    })();
    await failover(cluster);
    await waitFor('every master held by the survivor', holders, settled([heir], [3]), 90000, 200).catch(
      withLogs([heir]),
    );
    writing = false;
    await more;
    await rounds(redis, n, n + 1000);
    await expectNothingMissing(worker);
    expect(heir.output()).toMatch(/continuing from the checkpoint of the master whose replication history/);
  }, 300000);
});
