import { captureRunsWithoutLease, captureShardsByMaster } from '../../producers/capture/registry';
import { leaseKeys, producerRegistryKey, shardLeaseKeys } from '../../producers/lease';
import { readReconcileRecord, type ReconcileRecord } from '../../producers/reconcile-record';
import { listShards } from '../../producers/shards';
import { keyFromBytes } from '../../shared/core/bytes';
import { readFreshness } from '../../shared/core/canary';
import { FailureStore } from '../../shared/core/failure-store';
import { isOwnKey } from '../../shared/core/queue';
import { rebuildStatus, type RebuildStatus } from '../../features/maintenance/rebuild/status';
import type { AppContext } from '../context';

/** The job states `status` counts, in every queue jobs may be in. */
const STATES = ['waiting', 'prioritized', 'active', 'delayed', 'failed'] as const;
type State = (typeof STATES)[number];

export interface StatusReport {
  capture: {
    mode: string;
    /** `single`: one producer lease; `sharded`: a lease per Cluster master; `none`: every producer captures (outbox shared group). */
    leases: 'single' | 'sharded' | 'none';
    /** Per lease, the token of its holder (`host:pid:…`), null when nobody holds it. */
    holders: { shard: string; holder: string | null }[];
    /** Sharded capture: the live producers of the registry. */
    producers?: string[];
  };
  /** Per shard, the canary's last measurement; `current` false once it stopped being updated. */
  freshness: { shard: string; seconds: number; measuredAt: string; current: boolean }[];
  queue: {
    total: Record<State, number>;
    partitions: { name: string; counts: Record<State, number> }[];
    paused: boolean;
  };
  failedKeys: { total: number; byReason: Record<string, number> };
  reconciliation: (Omit<ReconcileRecord, 'finishedAt'> & { finishedAt: string }) | null;
  /** Per index the rules write to: documents (after a refresh) and, unless skipped, the source keys routed to it. */
  indices: { index: string; documents: number; keys: number | null }[];
  /** The rebuild in progress (a new index generation behind the alias), null when none runs. */
  rebuild: (Omit<RebuildStatus, 'startedAt' | 'deleteAfter'> & { startedAt: string; deleteAfter?: string }) | null;
  /** What needs an operator's attention; empty when nothing does (exit code 0). */
  attention: string[];
}

export interface StatusOptions {
  /** Freshness above this (seconds) needs attention. */
  maxFreshnessS: number;
  /** Count the source's keys per index (a SCAN of the whole source). */
  keys: boolean;
  now?: number;
}

/** Everything `status` shows, read from the queue Redis, the source and the search engine; changes nothing. */
export async function statusReport(ctx: AppContext, opts: StatusOptions): Promise<StatusReport> {
  const now = opts.now ?? Date.now();
  const attention: string[] = [];
  const capture = await captureStatus(ctx);
  for (const h of capture.holders)
    if (h.holder === null)
      attention.push(
        capture.leases === 'sharded'
          ? `no producer holds the capture lease of master ${h.shard}`
          : 'no producer holds the capture lease',
      );
  const freshness = await freshnessStatus(ctx, capture, now, opts.maxFreshnessS, attention);
  const queue = await queueStatus(ctx);
  if (queue.total.failed > 0) attention.push(`${queue.total.failed} failed jobs in the queue (replay them once fixed)`);
  if (queue.paused) attention.push('the queue is paused');
  const failedKeys = await failedKeyStatus(ctx);
  if (failedKeys.total > 0) attention.push(`${failedKeys.total} keys refused by the index (redis-es-sync failures)`);
  const last = await readReconcileRecord(ctx.queueRedis, ctx.config.queue.prefix);
  if (last?.result === 'failed') attention.push(`the last reconciliation failed: ${last.error ?? 'unknown error'}`);
  if (last && last.guarded.length > 0)
    attention.push(`the last reconciliation held back deletes (deletion guard) in ${last.guarded.join(', ')}`);
  return {
    capture,
    freshness,
    queue,
    failedKeys,
    reconciliation: last ? { ...last, finishedAt: new Date(last.finishedAt).toISOString() } : null,
    indices: await indexStatus(ctx, opts.keys),
    rebuild: await rebuildReport(ctx),
    attention,
  };
}

async function captureStatus(ctx: AppContext): Promise<StatusReport['capture']> {
  const { config, queueRedis } = ctx;
  const { prefix } = config.queue;
  const mode = config.producer.mode;
  if (captureRunsWithoutLease(config)) return { mode, leases: 'none', holders: [] };
  if (config.producer.shardedCapture && captureShardsByMaster(config) && ctx.source.isCluster) {
    const shards = (await listShards(ctx.source)).map((s) => s.id).sort();
    const tokens = shards.length === 0 ? [] : await queueRedis.mget(shards.map((s) => shardLeaseKeys(prefix, s).lease));
    const producers = await queueRedis.zrangebyscore(producerRegistryKey(prefix), `(${Date.now()}`, '+inf');
    return {
      mode,
      leases: 'sharded',
      holders: shards.map((shard, i) => ({ shard, holder: tokens[i] ?? null })),
      producers,
    };
  }
  return { mode, leases: 'single', holders: [{ shard: 'all', holder: await queueRedis.get(leaseKeys(prefix).lease) }] };
}

async function freshnessStatus(
  ctx: AppContext,
  capture: StatusReport['capture'],
  now: number,
  maxS: number,
  attention: string[],
): Promise<StatusReport['freshness']> {
  const { canary, leaseTtlMs } = ctx.config.producer;
  const records = await readFreshness(ctx.queueRedis, ctx.config.queue.prefix);
  // A record the canary keeps writing is at most a poll old; a hand-over takes up to the lease TTL.
  const currentWithinMs = 2 * canary.intervalMs + leaseTtlMs;
  const out = records.map((r) => ({
    shard: r.shard,
    seconds: r.freshnessMs / 1000,
    measuredAt: new Date(r.measuredAt).toISOString(),
    current: now - r.measuredAt <= currentWithinMs,
  }));
  if (!canary.enabled || capture.leases === 'none') return out;
  for (const r of out)
    if (r.current && r.seconds > maxS)
      attention.push(`freshness of ${r.shard} is ${r.seconds.toFixed(1)} s (over ${maxS} s)`);
  // Every master is measured (each shard, or the source): one without a current record has no canary.
  const expected = ctx.source.isCluster ? (await listShards(ctx.source)).map((s) => s.id) : ['source'];
  for (const shard of expected)
    if (!out.some((r) => r.shard === shard && r.current))
      attention.push(`no current freshness measurement for ${shard === 'source' ? 'the source' : `master ${shard}`}`);
  return out;
}

async function queueStatus(ctx: AppContext): Promise<StatusReport['queue']> {
  const queues = ctx.queues();
  const zero = (): Record<State, number> => Object.fromEntries(STATES.map((s) => [s, 0])) as Record<State, number>;
  const total = zero();
  const partitions: StatusReport['queue']['partitions'] = [];
  for (const q of await queues.everyQueue()) {
    const raw = await q.getJobCounts(...STATES);
    const counts = zero();
    for (const s of STATES) {
      counts[s] = raw[s] ?? 0;
      total[s] += counts[s];
    }
    partitions.push({ name: q.name, counts });
  }
  return { total, partitions, paused: await queues.isPaused() };
}

async function failedKeyStatus(ctx: AppContext): Promise<StatusReport['failedKeys']> {
  const byReason: Record<string, number> = {};
  let total = 0;
  for await (const rec of new FailureStore(ctx.queueRedis, ctx.config.queue.prefix).records()) {
    total++;
    byReason[rec.reasonClass] = (byReason[rec.reasonClass] ?? 0) + 1;
  }
  return { total, byReason };
}

async function indexStatus(ctx: AppContext, countSourceKeys: boolean): Promise<StatusReport['indices']> {
  const { router } = ctx;
  const indices = router.indices().filter((i) => i !== router.heartbeatIndex());
  const keys = countSourceKeys ? await keysPerIndex(ctx) : undefined;
  const out: StatusReport['indices'] = [];
  for (const index of indices)
    out.push({ index, documents: await ctx.sink.count(index), keys: keys ? (keys.get(index) ?? 0) : null });
  return out;
}

/** The source's keys per index, as the rules route them (the tool's own keys and heartbeats left out). */
async function keysPerIndex(ctx: AppContext): Promise<Map<string, number>> {
  const { config, router } = ctx;
  const counts = new Map<string, number>();
  for (const db of config.redis.databases) {
    for (const node of await ctx.source.masters(db)) {
      for (const pattern of config.redis.patterns) {
        let cursor = '0';
        do {
          const [next, page] = await node.client.scanBuffer(
            cursor,
            'MATCH',
            pattern,
            'COUNT',
            config.producer.scanCount,
          );
          cursor = next.toString('latin1');
          for (const bytes of page) {
            const key = keyFromBytes(bytes);
            if (isOwnKey(config.queue.prefix, key) || router.isHeartbeat(key)) continue;
            const route = router.route(db, key);
            if (route) counts.set(route.index, (counts.get(route.index) ?? 0) + 1);
          }
        } while (cursor !== '0');
      }
    }
  }
  return counts;
}

async function rebuildReport(ctx: AppContext): Promise<StatusReport['rebuild']> {
  const running = await rebuildStatus(ctx.queueRedis, ctx.config.queue.prefix);
  if (!running) return null;
  const { startedAt, deleteAfter, ...rest } = running;
  return {
    ...rest,
    startedAt: new Date(startedAt).toISOString(),
    ...(deleteAfter !== undefined ? { deleteAfter: new Date(deleteAfter).toISOString() } : {}),
  };
}
