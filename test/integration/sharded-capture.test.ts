import { Cluster, Redis } from 'ioredis';
import { producerRegistryKey, shardLeaseKeys } from '../../producers/lease';
import type { ConfigInput } from '../../producers/capture/registry';
import { esUrl, uniqueIndex } from '../support/elasticsearch';
import { expectNothingMissing, killAll, type Cli } from '../support/handover';
import { exited, spawnCli, startPipeline, waitFor, type TestPipeline } from '../support/pipeline';
import { startRedisCluster, type RedisClusterHandle } from '../support/redis-cluster';
import { startRedis, type RedisServerHandle } from '../support/redis-server';

const PREFIX = 'redis-es-sync';
/** A little longer than the hand-over tests' lease: three producers, a worker and six Redis servers share two cores here. */
const LEASE = { leaseTtlMs: 3000, leaseRenewMs: 500 } as const;

interface LogLine {
  time: string;
  msg: string;
  pid: number;
  shard?: string;
  fence?: number;
}

/** The JSON lines a producer printed. */
function lines(c: Cli): LogLine[] {
  const out: LogLine[] = [];
  for (const l of c.output().split('\n')) {
    if (!l.startsWith('{')) continue;
    try {
      out.push(JSON.parse(l) as LogLine);
    } catch {
      // a line cut by the end of the buffer
    }
  }
  return out;
}

/** One producer's claim on a shard: from taking its lease to the end of its capture (or its death). */
interface Claim {
  pid: number;
  shard: string;
  fence: number;
  from: number;
  to: number;
}

/**
 * Every claim each producer logged. A claim opens when the lease is acquired (before the
 * subscription) and closes when the tenure's capture has stopped (subscription closed, sink
 * flushed); a producer killed with SIGKILL closes its claims at the kill.
 */
function claims(children: readonly Cli[], killedAt: ReadonlyMap<number, number>): Claim[] {
  const out: Claim[] = [];
  for (const c of children) {
    const open = new Map<string, Claim>();
    for (const l of lines(c)) {
      if (l.shard === undefined || l.fence === undefined) continue;
      const t = Date.parse(l.time);
      if (l.msg === 'shard lease acquired: capturing this master') {
        const claim = { pid: l.pid, shard: l.shard, fence: l.fence, from: t, to: Infinity };
        open.set(l.shard, claim);
        out.push(claim);
      } else if (l.msg === 'shard capture stopped') {
        const claim = open.get(l.shard);
        if (claim) claim.to = t;
        open.delete(l.shard);
      }
    }
    const death = c.pid === undefined ? undefined : killedAt.get(c.pid);
    if (death !== undefined) for (const claim of open.values()) claim.to = Math.min(claim.to, death);
  }
  return out;
}

/** Pairs of claims by two producers on one shard that overlap in time. */
function overlaps(all: readonly Claim[]): [Claim, Claim][] {
  const bad: [Claim, Claim][] = [];
  for (const a of all)
    for (const b of all)
      if (a !== b && a.shard === b.shard && a.pid < b.pid && a.from < b.to && b.from < a.to) bad.push([a, b]);
  return bad;
}

describe('sharded capture on a 3-master Redis Cluster source', () => {
  let cluster: RedisClusterHandle;
  let queue: RedisServerHandle;
  let redis: Cluster;
  let queueRedis: Redis;
  let worker: TestPipeline | undefined;
  let input: ConfigInput;
  const children: Cli[] = [];
  const killedAt = new Map<number, number>();
  /** The running writer's stop, so a failed test still ends its loop (or jest never exits). */
  let stopWrites: (() => Promise<number>) | undefined;

  beforeAll(async () => {
    [cluster, queue] = await Promise.all([
      // A replica per master for CLUSTER FAILOVER; the node timeout at Redis's default, as nothing dies unasked.
      startRedisCluster({ masters: 3, replicasPerMaster: 1, nodeTimeoutMs: 15000 }),
      startRedis(),
    ]);
    redis = new Cluster(cluster.urls.map((url) => ({ host: '127.0.0.1', port: Number(new URL(url).port) })));
    queueRedis = new Redis(queue.url);
    input = {
      logLevel: 'info',
      redis: { cluster: { nodes: cluster.urls.slice(0, 2) } },
      queue: { url: queue.url },
      elasticsearch: { url: esUrl() },
      mapping: { defaultIndex: uniqueIndex('sharded-capture') },
      producer: {
        ...LEASE,
        shardedCapture: true,
        reconcileIntervalMs: 0,
        deletionGuard: { maxShare: 1 },
        topologyRefreshMs: 500,
      },
      worker: { lockDurationMs: 4000, stalledIntervalMs: 1000, retryBaseMs: 50, retryMaxMs: 1000 },
    };
  });

  afterAll(async () => {
    await stopWrites?.();
    await killAll(children);
    await worker?.stop();
    redis?.disconnect();
    queueRedis?.disconnect();
    await Promise.all([cluster?.stop(), queue?.stop()]);
  });

  /** The masters' node IDs now. */
  const masterIds = async (): Promise<string[]> => {
    const ids: string[] = [];
    for (const port of await cluster.masterPorts()) {
      const r = new Redis(port, '127.0.0.1', { lazyConnect: true });
      await r.connect();
      ids.push((await r.cluster('MYID')).trim());
      r.disconnect();
    }
    return ids.sort();
  };

  /** Which producer (by pid) the queue Redis records as holding each master's lease. */
  const holders = async (): Promise<Map<string, number | undefined>> => {
    const ids = await masterIds();
    const values = await queueRedis.mget(ids.map((id) => shardLeaseKeys(PREFIX, id).lease));
    // A token is `<host>:<pid>:<random>:<random>`.
    return new Map(ids.map((id, i) => [id, values[i] ? Number(values[i].split(':').at(-3)) : undefined]));
  };

  /** A producer's shards whose capture has started and not stopped, from its log. */
  const capturing = (c: Cli): Set<string> => {
    const held = new Set<string>();
    for (const l of lines(c)) {
      if (l.shard === undefined) continue;
      if (l.msg === 'shard capture started under its lease') held.add(l.shard);
      if (l.msg === 'giving up a shard: stopping its capture') held.delete(l.shard);
    }
    return held;
  };

  /**
   * Waits until every master's lease is held by one of `live`, each holding `spread` shards
   * (in some order) and capturing exactly the shards the queue Redis says it holds.
   */
  const settled = async (live: Cli[], spread: number[]): Promise<Map<string, number | undefined>> =>
    settle(live, spread).catch((err: unknown) => {
      const tails = live.map((c) => `--- producer ${c.pid} (exit ${c.exitCode}):\n${c.output().slice(-3000)}`);
      throw new Error(`${(err as Error).message}\n${tails.join('\n')}`);
    });
  const settle = async (live: Cli[], spread: number[]): Promise<Map<string, number | undefined>> =>
    waitFor(
      `the shards spread ${spread.join('/')} over ${live.length} producers`,
      () => holders(),
      (h) => {
        const pids = [...h.values()];
        if (pids.some((p) => p === undefined || !live.some((c) => c.pid === p))) return false;
        const counts = live.map((c) => pids.filter((p) => p === c.pid).length).sort((a, b) => b - a);
        if (JSON.stringify(counts) !== JSON.stringify(spread)) return false;
        return live.every((c) => {
          const mine = [...h].filter(([, p]) => p === c.pid).map(([s]) => s);
          const logged = capturing(c);
          return logged.size === mine.length && mine.every((s) => logged.has(s));
        });
      },
      60000,
      200,
    );

  const producer = (): Cli => {
    const c = spawnCli(input, ['producer']);
    children.push(c);
    return c;
  };

  /** Keys spread over every master's slots: a hash, a string, every 7th round a delete. */
  const round = (i: number): Promise<unknown> =>
    Promise.all([
      redis.hset(`user:${i % 300}`, { n: String(i) }),
      redis.set(`seq:${i % 3000}`, String(i)),
      i % 7 === 0 ? redis.del(`user:${(i * 13) % 300}`) : undefined,
    ]);

  /** Writes without pause (a few ms between rounds) until stopped; a round refused mid-failover is retried. */
  const writer = (): { stop: () => Promise<number> } => {
    let running = true;
    let n = 0;
    const done = (async () => {
      while (running) {
        try {
          await round(n);
          n++;
        } catch {
          await new Promise((r) => setTimeout(r, 50));
        }
        await new Promise((r) => setTimeout(r, 3));
      }
      return n;
    })();
    stopWrites = async () => {
      running = false;
      return done;
    };
    return { stop: stopWrites };
  };

  /** The holders of every master, sampled every 100 ms while `during` runs: each sample must name one live producer per master at most. */
  const sampled = async <T>(during: () => Promise<T>): Promise<{ result: T; samples: number; unheld: number }> => {
    let stop = false;
    let samples = 0;
    let unheld = 0;
    const sampler = (async () => {
      while (!stop) {
        const h = await holders().catch(() => undefined);
        if (h) {
          samples++;
          if ([...h.values()].some((p) => p === undefined)) unheld++;
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    try {
      return { result: await during(), samples, unheld };
    } finally {
      stop = true;
      await sampler;
    }
  };

  it('2 then 3 producers share the masters, one each at a time; a killed one’s masters are taken over and reconciled; failover and resharding during writes lose nothing', async () => {
    worker = await startPipeline({ ...input, logLevel: 'silent' }, { producer: false, worker: true });
    const writes = writer();

    // One producer takes every shard, as the single lease did.
    const a = producer();
    await settled([a], [3]);
    // Each tenure reconciles its own master, one pass per shard; each current master, as a
    // Cluster under load may fail one over by itself, its promoted replica a shard of its own.
    await waitFor(
      'a reconciliation of each master',
      async () => {
        const reconciled = new Set(
          lines(a)
            .filter((l) => l.msg === 'reconciliation done')
            .map((l) => l.shard ?? '(no shard)'),
        );
        return { masters: await masterIds(), reconciled: [...reconciled] };
      },
      ({ masters, reconciled }) => masters.every((m) => reconciled.includes(m)) && !reconciled.includes('(no shard)'),
      // CI runs this beside four idle search engines on two cores: a loose bound, not a timing.
      120000,
    ).catch((err: unknown) => {
      throw new Error(`${(err as Error).message}\n--- producer ${a.pid}:\n${a.output().slice(-4000)}`);
    });

    const b = producer();
    await settled([a, b], [2, 1]);
    expect(await queueRedis.zcard(producerRegistryKey(PREFIX))).toBe(2);
    const c = producer();
    const spread = await settled([a, b, c], [1, 1, 1]);

    // kill -9 one producer: its master is taken over once its lease runs out, and reconciled.
    const victim = b;
    const [victimShard] = [...spread].filter(([, p]) => p === victim.pid).map(([s]) => s);
    expect(victimShard).toBeDefined();
    const killTime = Date.now();
    victim.kill('SIGKILL');
    killedAt.set(victim.pid!, killTime);
    await exited(victim);
    const after = await settled([a, c], [2, 1]);
    const heir = [a, c].find((p) => p.pid === after.get(victimShard!))!;
    const takeover = lines(heir).find(
      (l) =>
        l.msg === 'shard lease acquired: capturing this master' &&
        l.shard === victimShard &&
        Date.parse(l.time) > killTime,
    );
    expect(takeover).toBeDefined();
    // Not asserted (wall-clock): reported by the test log for the lease bound (TTL + a renewal round).
    process.stdout.write(
      `takeover of ${victimShard} ${Date.parse(takeover!.time) - killTime} ms after SIGKILL (lease TTL ${LEASE.leaseTtlMs} ms)\n`,
    );
    await waitFor(
      'the taken-over master reconciled by its new holder',
      async () =>
        lines(heir).some(
          (l) => l.msg === 'reconciliation done' && l.shard === victimShard && Date.parse(l.time) > killTime,
        ),
      Boolean,
      60000,
    );

    // A third producer again, then CLUSTER FAILOVER on one master's replica while writes go on.
    const d = producer();
    const three = [a, c, d];
    await settled(three, [1, 1, 1]);
    const { samples, unheld } = await sampled(async () => {
      const ports = await cluster.masterPorts();
      const before = await masterIds();
      await cluster.failover();
      const promoted = await masterIds();
      expect(promoted).not.toEqual(before);
      expect(await cluster.masterPorts()).not.toEqual(ports);
      await settled(three, [1, 1, 1]);

      // Resharding: slots and their keys move from one master to another under writes.
      const [from, to] = await cluster.masterPorts();
      await cluster.reshard(from!, to!, 1000);
      await cluster.waitHealthy();
      await settled(three, [1, 1, 1]);
    });
    expect(samples).toBeGreaterThan(0);
    // Unheld samples are the hand-over windows (failover); most samples see every master held.
    expect(unheld).toBeLessThan(samples);

    const rounds = await writes.stop();
    expect(rounds).toBeGreaterThan(1000);
    await expectNothingMissing(worker);

    // Never two producers on one shard at a time, from their own logs.
    const all = claims(children, killedAt);
    expect(overlaps(all)).toEqual([]);
    // Each shard's tenures got increasing fencing numbers.
    for (const shard of new Set(all.map((cl) => cl.shard))) {
      const fences = all
        .filter((cl) => cl.shard === shard)
        .sort((x, y) => x.from - y.from)
        .map((cl) => cl.fence);
      expect(fences).toEqual([...fences].sort((x, y) => x - y));
    }
  }, 600000);
});
