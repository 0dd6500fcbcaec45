import { Gauge } from 'prom-client';
import { exitCodeOf, EXIT } from '../shared/platform/errors';
import type { Logger } from '../shared/platform/logger';
import { captureLeader, captureShards, registry as metricsRegistry } from '../shared/platform/metrics';
import type { RedisClient, SourceRedis } from '../shared/platform/redis';
import type { CaptureProducer } from './capture/types';
import { appendOnly, shardLeaseKeys, type ProducerRegistry, type RedisLease } from './lease';
import { listShards, planShards, shardSource } from './shards';

export const shardsHeld = new Gauge({
  name: 'redis_es_sync_capture_shards_held',
  help: 'Sharded capture: Cluster masters whose shard lease this producer holds (it captures them).',
  registers: [metricsRegistry],
});

export const shardProducers = new Gauge({
  name: 'redis_es_sync_capture_producers',
  help: 'Sharded capture: live producers in the registry, as this producer last counted them (itself included).',
  registers: [metricsRegistry],
});

export interface ShardedProducerDeps {
  source: SourceRedis;
  /** Where the shard leases and the producer registry live. */
  queueRedis: RedisClient;
  prefix: string;
  registry: ProducerRegistry;
  /** The lease of one shard, named after this producer (`registry.member`). */
  lease: (shard: string) => RedisLease;
  /**
   * A fresh capture producer for one tenure on one shard: `source` is the shard's view (its
   * master only), and enqueues and position writes go through `lease`.
   */
  create: (shard: string, lease: RedisLease, source: SourceRedis) => CaptureProducer;
  ttlMs: number;
  renewMs: number;
  logger: Logger;
}

/** One tenure on one shard. */
interface ShardTenure {
  shard: string;
  lease: RedisLease;
  fence: number;
  inner: CaptureProducer;
  /** The shard's view of the source. */
  source: SourceRedis;
  /** The slots its master held when last looked at (before the tenure's first reconciliation read them). */
  slots: ReadonlySet<number> | undefined;
  started: boolean;
  starting: Promise<void>;
  renewedAt: number;
  /** Set once the tenure ends: its capture stops (flushing under the lease), then the lease is released. */
  ending?: Promise<void>;
}

/**
 * Sharded capture of a Cluster source: a lease per master (by node ID), each with its own
 * fencing counter, and a tenure per held lease, which captures that master only and starts,
 * as every notifications tenure does, by subscribing and then reconciling (here: SCANning that
 * master). Every `renewMs` a producer renews its leases, beats in the producer registry,
 * lists the masters and moves towards its fair share, ceil(masters / live producers): it
 * gives up what it holds beyond it (capture stopped and flushed first, then the lease
 * released) and takes free leases while below it. A dead producer's leases and heartbeat run
 * out after `ttlMs`, and the others take its masters over. docs/handover.md has the argument.
 */
export class ShardedProducer implements CaptureProducer {
  private readonly tenures = new Map<string, ShardTenure>();
  private timer: NodeJS.Timeout | undefined;
  private ticking: Promise<void> | undefined;
  private stopped = false;
  private readonly log: Logger;
  /** During start(): the first tenures' starts, which it waits for. */
  private firstLeads: Promise<void>[] | undefined;

  constructor(private readonly deps: ShardedProducerDeps) {
    this.log = deps.logger.child({ component: 'shard-leases', holder: deps.registry.member });
  }

  /** The shards whose capture runs under a lease held now. */
  get shards(): string[] {
    return [...this.tenures.values()].filter((t) => t.started && !t.ending).map((t) => t.shard);
  }

  /** The capture producer of a shard's current tenure, once started. */
  current(shard: string): CaptureProducer | undefined {
    const t = this.tenures.get(shard);
    return t?.started && !t.ending ? t.inner : undefined;
  }

  /**
   * Takes its share at once (an error of a capture's start propagates: bad set-up should stop
   * the process); an unreachable queue Redis only delays, as the loop keeps trying.
   */
  async start(): Promise<void> {
    // As with the single lease: the hand-over argument assumes queued jobs survive a queue Redis restart.
    if ((await appendOnly(this.deps.queueRedis)) === false) {
      this.log.warn(
        'the queue Redis runs without appendonly: if it restarts, the jobs it held are lost, and their changes stay missing until a reconciliation (docs/operations.md, "Running it in production")',
      );
    }
    const first: Promise<void>[] = [];
    this.firstLeads = first;
    this.timer = setInterval(() => this.schedule(), this.deps.renewMs);
    this.schedule();
    await this.ticking;
    this.firstLeads = undefined;
    const failed = (await Promise.allSettled(first)).find((r): r is PromiseRejectedResult => r.status === 'rejected');
    // What waiting cannot fix (a source without notifications, refused credentials) stops the
    // start, as a single lease's first tenure does. A passing failure (a master's connection
    // closed while the cluster settles) only costs that shard a round: lead() has released it,
    // and the next rounds take it again.
    if (failed && exitCodeOf(failed.reason) === EXIT.config) {
      await this.stop();
      throw failed.reason;
    }
    if (this.tenures.size === 0) this.log.info('no free shard within the fair share: standing by');
  }

  async stop(): Promise<void> {
    this.stopped = true;
    // Renewals go on while the tenures flush what they captured under their leases.
    await this.ticking;
    await Promise.all([...this.tenures.values()].map((t) => this.end(t, 'the producer stops')));
    if (this.timer) clearInterval(this.timer);
    await this.ticking;
    await this.deps.registry
      .leave()
      .catch((err: unknown) =>
        this.log.warn({ err }, 'could not leave the producer registry; the entry expires by itself'),
      );
    shardsHeld.set(0);
  }

  async idle(): Promise<void> {
    await Promise.all(this.shards.map((s) => this.current(s)?.idle() ?? Promise.resolve()));
  }

  requestReconcile(): void {
    for (const s of this.shards) this.current(s)?.requestReconcile();
  }

  private schedule(): void {
    if (this.ticking) return;
    this.ticking = this.tick()
      .catch((err: unknown) =>
        this.log.warn({ err }, 'shard lease round failed (queue Redis or source unreachable); trying again'),
      )
      .finally(() => {
        this.ticking = undefined;
      });
  }

  private async tick(): Promise<void> {
    await Promise.all([...this.tenures.values()].map((t) => this.renew(t)));
    if (this.stopped) return;
    await Promise.all([...this.tenures.values()].map((t) => this.watchSlots(t)));
    const { registry, queueRedis, prefix } = this.deps;
    const live = await registry.beat();
    const shards = await listShards(this.deps.source);
    const ids = shards.map((s) => s.id);
    const holders = ids.length === 0 ? [] : await queueRedis.mget(ids.map((id) => shardLeaseKeys(prefix, id).lease));
    const held = [...this.tenures.values()].filter((t) => !t.ending).map((t) => t.shard);
    const others = new Set(ids.filter((id, i) => holders[i] !== null && !this.tenures.has(id)));
    for (const t of this.tenures.values()) if (t.ending) others.add(t.shard);
    const sortedLive = [...live].sort();
    const plan = planShards({
      masters: ids,
      held,
      others,
      producers: live.length,
      offset: Math.max(0, sortedLive.indexOf(registry.member)),
    });
    shardProducers.set(live.length);
    captureShards.set(ids.length);
    for (const shard of plan.release) {
      const t = this.tenures.get(shard);
      if (!t) continue;
      const gone = !ids.includes(shard);
      void this.end(
        t,
        gone
          ? 'the node is no longer a master (failover)'
          : `above the fair share (${plan.share} of ${ids.length} masters for ${live.length} producers)`,
      );
    }
    let room = plan.share - (held.length - plan.release.length);
    for (const shard of plan.candidates) {
      // stop() waits for this round, then ends whatever it took.
      if (room <= 0) break;
      const lease = this.deps.lease(shard);
      const asked = Date.now();
      const fence = await lease.acquire();
      if (fence === undefined) continue;
      room--;
      const leading = this.lead(shard, lease, fence, asked);
      // Logged by lead(); later rounds try again.
      if (this.firstLeads) this.firstLeads.push(leading);
      else leading.catch(() => undefined);
    }
    shardsHeld.set([...this.tenures.values()].filter((t) => !t.ending).length);
  }

  /** Renews one tenure's lease; a lost lease (or one not renewed within its TTL) ends the tenure. */
  private async renew(t: ShardTenure): Promise<void> {
    try {
      if (await t.lease.renew()) {
        t.renewedAt = Date.now();
        return;
      }
      void this.end(t, 'the lease was taken by another producer, or expired', { lost: true });
    } catch (err) {
      // Unreachable queue Redis: keep the shard while the lease may still be ours, never longer.
      if (Date.now() - t.renewedAt < this.deps.ttlMs) {
        this.log.warn({ err, shard: t.shard }, 'could not renew a shard lease; retrying');
        return;
      }
      t.lease.forget();
      void this.end(t, 'the lease could not be renewed within its TTL', { lost: true });
    }
  }

  /**
   * A shard's reconciliation decides the deletions of its master's slots only (reconcile.ts).
   * A key deleted on another master while that one was not captured, whose slot then moved
   * here, would be decided by neither: so when the master gains slots its shard reconciles
   * again, covering the documents of the slots it took.
   */
  private async watchSlots(t: ShardTenure): Promise<void> {
    if (!t.started || t.ending) return;
    try {
      const now = await t.source.slotsServed();
      const before = t.slots;
      t.slots = now;
      if (!now || !before) return;
      let gained = 0;
      for (const s of now) if (!before.has(s)) gained++;
      if (gained === 0) return;
      this.log.info({ shard: t.shard, gained }, 'the master took slots (resharding): reconciling its shard');
      t.inner.requestReconcile();
    } catch (err) {
      this.log.warn({ err, shard: t.shard }, "could not read a shard master's slots; trying again next round");
    }
  }

  private async lead(shard: string, lease: RedisLease, fence: number, asked: number): Promise<void> {
    this.log.info({ shard, fence }, 'shard lease acquired: capturing this master');
    const source = shardSource(this.deps.source, shard);
    const inner = this.deps.create(shard, lease, source);
    const t: ShardTenure = {
      shard,
      lease,
      fence,
      inner,
      source,
      slots: undefined,
      started: false,
      starting: Promise.resolve(),
      renewedAt: asked,
    };
    t.starting = (async () => {
      // Before the first reconciliation reads them: a slot taken after this is reconciled again.
      t.slots = await source.slotsServed();
      await inner.start();
    })();
    this.tenures.set(shard, t);
    try {
      await t.starting;
    } catch (err) {
      this.log.error({ err, shard, fence }, 'could not start capturing a shard; releasing it, trying again');
      await this.end(t, 'its capture could not start');
      throw err;
    }
    if (t.ending) return;
    t.started = true;
    captureLeader.set({ shard }, 1);
    this.log.info({ shard, fence, ms: Date.now() - asked }, 'shard capture started under its lease');
  }

  /**
   * Ends a tenure: its capture stops, which flushes what it captured while the lease is still
   * renewed, and only then is the lease released, so the next holder's tenure starts after this
   * one has stopped. A lost lease is not released (it is not ours).
   */
  private end(t: ShardTenure, reason: string, opts: { lost?: boolean } = {}): Promise<void> {
    if (t.ending) return t.ending;
    const log = opts.lost ? this.log.warn.bind(this.log) : this.log.info.bind(this.log);
    log({ shard: t.shard, fence: t.fence, reason }, 'giving up a shard: stopping its capture');
    // A shard this producer no longer captures is no series of its: another producer reports it.
    captureLeader.remove({ shard: t.shard });
    t.ending = (async () => {
      await t.starting.catch(() => undefined);
      await t.inner
        .stop()
        .catch((err: unknown) => this.log.error({ err, shard: t.shard }, 'error while stopping capture'));
      // Said before the release: once released, the next holder may start (and log) at once.
      this.log.info({ shard: t.shard, fence: t.fence, reason }, 'shard capture stopped');
      if (!opts.lost) {
        await t.lease
          .release()
          .catch((err: unknown) =>
            this.log.warn({ err, shard: t.shard }, 'could not release a shard lease; it expires by itself'),
          );
      }
      if (this.tenures.get(t.shard) === t) this.tenures.delete(t.shard);
      shardsHeld.set([...this.tenures.values()].filter((x) => !x.ending).length);
    })();
    return t.ending;
  }
}
