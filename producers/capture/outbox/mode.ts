import type { Redis } from 'ioredis';
import { displayKey } from '../../../shared/core/bytes';
import { LeaseLostError, errorMessage } from '../../../shared/platform/errors';
import type { Logger } from '../../../shared/platform/logger';
import { outboxMalformed } from '../../../shared/platform/metrics';
import { closeRedis, type RedisClient } from '../../../shared/platform/redis';
import type { ChangeSink } from '../../change-sink';
import type { Fence } from '../../lease';
import type { CaptureContext, CaptureMode } from '../types';
import { outboxConfig, type OutboxAppConfig } from './config';
import { nonEmpty } from '../../../shared/platform/config/schema';
import {
  decodeAutoClaim,
  decodeClaim,
  decodeConsumers,
  decodeGroups,
  decodePendingIds,
  decodeOldestPending,
  decodeReadGroup,
  minId,
  nextId,
  parseEntry,
  type EntryRules,
  type RawEntry,
} from './entry';
import { checkServer, checkStreamIsNotData, outboxNames } from './topology';
import { backoffDelay, REDIS_LOOP } from '../../../shared/platform/retry';
import { sleep } from '../../../shared/platform/sleep';

/**
 * Deletes the group's consumers that hold nothing and have been idle for ARGV[2] ms (the
 * default consumer name changes with every process, so restarts would pile them up). In one
 * script, so no consumer can be given an entry between the check and the delete; a live
 * consumer deleted while it waits is created again by its next read.
 */
const FORGET_IDLE_CONSUMERS = `
local removed = 0
for _, c in ipairs(redis.call('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])) do
  local f = {}
  for i = 1, #c, 2 do f[c[i]] = c[i + 1] end
  if f['name'] ~= ARGV[3] and tonumber(f['pending']) == 0 and tonumber(f['idle']) >= tonumber(ARGV[2]) then
    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], f['name'])
    removed = removed + 1
  end
end
return removed`;

/**
 * How often the lease holder looks for entries that an earlier holder was given and never
 * acknowledged (one was paused while it held them): a few round trips, so not per batch.
 */
const TAKE_OVER_EVERY_MS = 1000;

/** Trimming needs a few round trips; once a second keeps the stream short without adding load per batch. */
const TRIM_EVERY_MS = 1000;
/** With `trimMaxLen`, at most this many entries are looked at (and removed) per trim. */
const TRIM_STEP = 10000;

export interface OutboxStats {
  /** Entries handled: new, redelivered and claimed. */
  read: number;
  /** Own pending entries read again (start-up, or after an error) with ID 0. */
  redelivered: number;
  /** Entries taken over from other consumers with XAUTOCLAIM, once idle for claimIdleMs. */
  claimed: number;
  /** Entries taken over at once from consumers that held the lease under an older fencing number. */
  takenOver: number;
  acked: number;
  /** Entries without a usable `key` (or with a bad `db`): logged, acknowledged, skipped. */
  malformed: number;
  /** Entries deleted from the stream before they were acknowledged: their change may be lost until a reconciliation. */
  deleted: number;
  trimmed: number;
}

/**
 * Capture from a Redis Streams outbox that the application writes beside its data. Reads
 * with a consumer group, so every entry is delivered until it is acknowledged, and
 * acknowledges an entry only once the jobs for its keys are in BullMQ: at-least-once,
 * with no gap across crashes or restarts.
 */
export class OutboxMode implements CaptureMode {
  private readonly sink: ChangeSink;
  readonly stats: OutboxStats = {
    read: 0,
    redelivered: 0,
    claimed: 0,
    takenOver: 0,
    acked: 0,
    malformed: 0,
    deleted: 0,
    trimmed: 0,
  };
  readonly stream: string;
  readonly group: string;
  readonly consumer: string;
  private readonly settings: OutboxAppConfig['producer']['outbox'];
  private readonly streamDb: number;
  private readonly rules: EntryRules;
  private readonly fence: Fence;
  /** Under a lease: the earlier holders' consumers are known, and fenced off, so their entries are taken over at once. */
  private readonly leased: boolean;
  /** In the queue Redis, beside the lease: consumer name → the fencing number it last led under. */
  private readonly holdersKey: string;
  /** In the queue Redis: `reconcile` is `owed` from a group's creation until a reconciliation after it completed. */
  private readonly stateKey: string;
  private readonly log: Logger;
  /** XREADGROUP with BLOCK holds its connection, so reads get one of their own. */
  private reader: Redis | undefined;
  private readerId: number | undefined;
  private loop: Promise<void> | undefined;
  private stopping = false;
  /** Aborted at stop: cuts a backoff short. */
  private readonly stopped = new AbortController();
  private caughtUp!: Promise<void>;
  private markCaughtUp: () => void = () => undefined;
  private lastClaim = 0;
  private lastTakeOver = 0;
  private lastTrim = 0;

  constructor(private readonly deps: CaptureContext<OutboxAppConfig>) {
    const { config } = deps;
    this.settings = config.producer.outbox;
    this.streamDb = nonEmpty(config.redis.databases, 'redis.databases')[0];
    ({ stream: this.stream, group: this.group, consumer: this.consumer } = outboxNames(config));
    this.rules = { defaultDb: this.streamDb, databases: new Set(config.redis.databases) };
    this.log = deps.logger;
    // Entries are acknowledged after each flush, and flush() enqueues held hot keys at once.
    this.sink = deps.sink;
    this.fence = deps.fence;
    this.leased = deps.leased;
    this.holdersKey = `${config.queue.prefix}:outbox:holders:${this.stream}:${this.group}`;
    this.stateKey = `${config.queue.prefix}:outbox:state:${this.stream}:${this.group}`;
    this.caughtUp = new Promise<void>((resolve) => (this.markCaughtUp = resolve));
  }

  /** Commands that do not block share the pool's connection to the stream's database. */
  private get redis(): RedisClient {
    return this.deps.source.db(this.streamDb);
  }

  async start(): Promise<void> {
    await checkServer(this.redis);
    checkStreamIsNotData(this.deps.config, this.deps.router, this.stream, this.streamDb);
    const created = await this.ensureGroup(this.settings.startFrom);
    const owed = created || (await this.deps.queueRedis.hget(this.stateKey, 'reconcile')) === 'owed';
    if (this.leased) await this.registerAsHolder();
    this.reader = this.deps.source.subscriber('', 'outbox-reader', this.streamDb);
    this.readerId = await this.reader.client('ID');
    this.reader.on('ready', () => {
      // A reconnect gets a new client id; CLIENT UNBLOCK at stop needs the current one.
      this.reader?.client('ID').then(
        (id) => (this.readerId = id),
        () => (this.readerId = undefined),
      );
    });
    // Everything an earlier tenure did not acknowledge is still in the group: earlier lease
    // holders' pending entries (taken over at once), its own (read from 0), other consumers'
    // (claimed once idle for claimIdleMs), and what nobody was given yet.
    const resuming = this.leased
      ? "taking over earlier lease holders' pending entries, then resuming from the group's pending and undelivered entries"
      : "resuming from the group's pending and undelivered entries";
    this.log.info(
      { created, owed, startFrom: this.settings.startFrom, fence: this.fence.fence },
      created
        ? 'reading the outbox stream; new group, reconciling what existed before it'
        : owed
          ? `reading the outbox stream: ${resuming}; reconciling, as an earlier tenure that created the group did not finish its reconciliation`
          : `reading the outbox stream: ${resuming} (no reconciliation)`,
    );
    this.loop = this.run();
    // A new group has seen nothing written before it: index what already exists once. Later
    // starts resume from the group's own position and need no snapshot, unless the tenure
    // that created the group lost the lease (or died) before that reconciliation completed.
    if (owed) this.reconcileOwed();
  }

  /** Resolves once this consumer's own unacknowledged entries are handled (the host then waits for reconciliations). */
  async idle(): Promise<void> {
    await this.caughtUp;
  }

  /**
   * The reconciliation a new group needs; it stays owed (to the next tenure) until a pass
   * completes, and is cleared under the fence. A pass that fails is retried by the host's
   * reconciler but then no longer clears it: the next tenure reconciles once more, which costs
   * work only.
   */
  private reconcileOwed(): void {
    if (this.stopping) return;
    const { reconciler } = this.deps;
    const before = reconciler.completed;
    this.deps.requestReconcile();
    reconciler
      .idle()
      .then(async () => {
        if (reconciler.completed > before) await this.fence.hset(this.stateKey, { reconcile: 'done' });
      })
      .catch((err: unknown) =>
        this.log.warn(
          { err },
          'could not record the reconciliation of the new group as done; the next tenure runs it again',
        ),
      );
  }

  /** Stops reading and finishes the batch in hand (enqueue, then acknowledge). */
  async stop(): Promise<void> {
    this.stopping = true;
    this.stopped.abort();
    await this.unblockReader();
    await this.loop;
    this.markCaughtUp();
  }

  /**
   * The reader is closed only after the host's last flush: only reconciliation keys can be in
   * hand then (entries are flushed before their XACK). Should that flush have been refused for
   * a lost lease, a scheduled pass runs again on the next leader's schedule, and the pass a new
   * group needs stays owed (stateKey) for the next leader.
   */
  async close(): Promise<void> {
    await closeRedis(this.reader);
  }

  /**
   * XGROUP CREATE … MKSTREAM; false when the group already exists. The reconciliation a new
   * group needs is recorded as owed (under the fence) before the group is created, so a
   * tenure that dies or loses the lease in between leaves it to the next one.
   */
  private async ensureGroup(from: '0' | '$'): Promise<boolean> {
    if (!(await this.groupExists())) await this.fence.hset(this.stateKey, { reconcile: 'owed' });
    try {
      await this.redis.xgroup('CREATE', this.stream, this.group, from, 'MKSTREAM');
      return true;
    } catch (err) {
      if (errorMessage(err).startsWith('BUSYGROUP')) return false;
      throw err;
    }
  }

  private async groupExists(): Promise<boolean> {
    try {
      return decodeGroups(await this.redis.xinfo('GROUPS', this.stream)).some((g) => g.name === this.group);
    } catch (err) {
      if (/no such key/i.test(errorMessage(err))) return false;
      throw err;
    }
  }

  /**
   * Own pending entries first (ID 0: read before a crash or an error but not acknowledged),
   * then new ones (`>`). Any error sends the loop back to its own pending entries, so an
   * entry whose enqueue or XACK failed is handled again rather than forgotten.
   */
  private async run(): Promise<void> {
    const reader = this.reader;
    if (!reader) throw new Error('outbox: run() before start() opened the reader');
    const { batch, blockMs, claimIdleMs } = this.settings;
    let pendingFrom: string | undefined = '0';
    let failures = 0;
    while (!this.stopping) {
      try {
        if (this.leased && Date.now() - this.lastTakeOver >= TAKE_OVER_EVERY_MS) {
          await this.takeOverFromEarlierHolders();
          this.lastTakeOver = Date.now();
        }
        if (Date.now() - this.lastClaim >= claimIdleMs / 2) {
          await this.claimAbandoned();
          this.lastClaim = Date.now();
        }
        if (pendingFrom !== undefined) {
          const entries = await this.readGroup(reader, batch, [], pendingFrom);
          const first = entries[0];
          const last = entries.at(-1);
          if (first === undefined || last === undefined) {
            pendingFrom = undefined;
            this.markCaughtUp();
            continue;
          }
          this.stats.redelivered += entries.length;
          this.log.info({ entries: entries.length, from: first.id }, 'redelivered own unacknowledged entries');
          await this.handle(entries);
          pendingFrom = last.id;
        } else {
          const entries = await this.readGroup(reader, batch, ['BLOCK', blockMs], '>');
          if (entries.length > 0) await this.handle(entries);
        }
        if (Date.now() - this.lastTrim >= TRIM_EVERY_MS) {
          await this.trim();
          this.lastTrim = Date.now();
        }
        failures = 0;
      } catch (err) {
        if (err instanceof LeaseLostError) {
          // Not acknowledged: these entries stay pending under this consumer, which the next leader finds on record and takes over.
          this.log.warn({ err }, 'producer lease lost: reading and acknowledging nothing more');
          this.markCaughtUp();
          return;
        }
        pendingFrom = '0';
        if (errorMessage(err).startsWith('NOGROUP')) {
          // The stream or the group was deleted under us: recreate from the start of
          // whatever the stream holds now, so nothing written since is skipped, and
          // reconcile for the entries that went with the old stream.
          this.log.warn({ err }, 'outbox stream or group missing; recreating the group from 0 and reconciling');
          const recreated = await this.ensureGroup('0').then(
            (created) => {
              if (created) this.reconcileOwed();
              return true;
            },
            () => false,
          );
          if (recreated) continue;
        }
        failures++;
        const delay = backoffDelay(REDIS_LOOP, failures);
        this.log.warn({ err, retryInMs: delay }, 'outbox read failed');
        await sleep(delay, this.stopped.signal);
      }
    }
  }

  /**
   * Hands the entries' keys to the sink, then acknowledges them.
   *
   * `capture()` only buffers; the sink enqueues asynchronously (on a timer or a full batch).
   * `flush()` is chained behind every flush already started and itself loops until the
   * buffer is empty, retrying while the queue Redis is down; so when the flush below
   * resolves, every key captured before it was called is in BullMQ — whether it was taken by
   * this flush, by an earlier one still in flight, or coalesced into a buffered change of the
   * same key. Only then is XACK sent. A crash before XACK leaves the entries pending in the
   * group and they are delivered again: duplicate jobs at worst, which versioning makes
   * harmless. Malformed entries are acknowledged in the same XACK, so they never block the stream.
   *
   * A flush that dropped changes (lease lost) throws LeaseLostError, so nothing is acked. The
   * fence check right before XACK keeps a leader that was paused after its flush from acking
   * once replaced; if the lease is lost between that check and the XACK, the entries acked are
   * still only ones whose jobs the flush put in BullMQ.
   */
  private async handle(entries: readonly RawEntry[]): Promise<void> {
    for (const raw of entries) {
      const entry = parseEntry(raw, this.rules);
      this.stats.read++;
      if (entry.kind === 'change') {
        for (const key of entry.keys) this.sink.capture(entry.db, key, outboxConfig.source);
      } else if (entry.kind === 'malformed') {
        this.stats.malformed++;
        outboxMalformed.inc({ part: 'entry' });
        this.log.warn(
          { id: entry.id, reason: entry.reason, fields: raw.fields?.slice(0, 10).map(displayKey) },
          'malformed outbox entry acknowledged and skipped',
        );
      } else {
        this.stats.deleted++;
        this.log.error(
          { id: entry.id },
          'outbox entry deleted before it was handled: its change is unknown; run a reconciliation',
        );
      }
    }
    await this.sink.flush();
    await this.fence.check();
    await this.redis.xack(this.stream, this.group, ...entries.map((e) => e.id));
    this.stats.acked += entries.length;
  }

  /**
   * Records, under the fence, that this consumer reads for the lease holder: once the lease has
   * gone to a newer holder, that newer one knows this consumer is fenced off (it can neither
   * enqueue nor acknowledge) and takes its pending entries over without waiting claimIdleMs.
   * The consumer is created first, so the record never names a consumer missing from the group.
   */
  private async registerAsHolder(): Promise<void> {
    await this.redis.call('XGROUP', 'CREATECONSUMER', this.stream, this.group, this.consumer);
    await this.fence.hset(this.holdersKey, { [this.consumer]: String(this.fence.fence) });
  }

  /**
   * Takes over, with XCLAIM and no idle time, the pending entries of every consumer that led
   * under an older fencing number: it was replaced, so whatever it holds unacknowledged may
   * have been dropped when its flush failed. A consumer this lease never recorded (another
   * deployment sharing the group, a producer run without a lease) may be alive, so its entries
   * are left to XAUTOCLAIM after claimIdleMs. Checked against the fence first: a replaced
   * holder, woken from a pause, must not take entries from its successor. Runs at the start of
   * the tenure and then every TAKE_OVER_EVERY_MS, for entries a replaced holder read after it.
   */
  private async takeOverFromEarlierHolders(): Promise<void> {
    await this.fence.check();
    const own = this.fence.fence;
    if (own === undefined) return;
    const holders = await this.deps.queueRedis.hgetall(this.holdersKey);
    const consumers = decodeConsumers(await this.redis.xinfo('CONSUMERS', this.stream, this.group));
    const present = new Set(consumers.map((c) => c.name));
    // Consumers deleted from the group (idle, nothing pending) have nothing left to take over.
    const gone = Object.keys(holders).filter((name) => name !== this.consumer && !present.has(name));
    if (gone.length > 0) await this.deps.queueRedis.hdel(this.holdersKey, ...gone);
    for (const c of consumers) {
      const ledUnder = holders[c.name] === undefined ? undefined : Number(holders[c.name]);
      if (c.name === this.consumer || c.pending === 0 || ledUnder === undefined || !(ledUnder < own)) continue;
      await this.takeOverFrom(c.name, ledUnder, own);
    }
  }

  private async takeOverFrom(consumer: string, ledUnder: number, own: number): Promise<void> {
    let taken = 0;
    let deleted = 0;
    while (!this.stopping) {
      const ids = decodePendingIds(
        await this.redis.xpending(this.stream, this.group, '-', '+', this.settings.batch, consumer),
      );
      if (ids.length === 0) break;
      const entries = decodeClaim(
        await this.redis.callBuffer('XCLAIM', this.stream, this.group, this.consumer, 0, ...ids),
      );
      // An id XCLAIM left out was acknowledged meanwhile (by the old holder, after a flush that
      // succeeded) or deleted from the stream; only the second loses a change.
      const claimed = new Set(entries.map((e) => e.id));
      for (const id of ids)
        if (!claimed.has(id) && (await this.redis.xrange(this.stream, id, id)).length === 0) deleted++;
      taken += entries.length;
      this.stats.takenOver += entries.length;
      if (entries.length > 0) await this.handle(entries);
    }
    if (deleted > 0) {
      this.stats.deleted += deleted;
      this.log.error(
        { consumer, count: deleted },
        "an earlier lease holder's pending outbox entries were deleted from the stream before they were handled; run a reconciliation",
      );
    }
    if (taken > 0)
      this.log.warn(
        { consumer, entries: taken, ledUnder, fence: own },
        'took over the pending entries of an earlier lease holder (fenced off: it can no longer enqueue or acknowledge)',
      );
  }

  /** One XREADGROUP from `from` (`>` for new entries, an id for this consumer's own pending ones). */
  private async readGroup(
    reader: Redis,
    count: number,
    block: readonly (string | number)[],
    from: string,
  ): Promise<RawEntry[]> {
    // As Buffers, so a key that is not UTF-8 keeps its bytes (entry.ts decodes them).
    const reply: unknown = await reader.callBuffer(
      'XREADGROUP',
      'GROUP',
      this.group,
      this.consumer,
      'COUNT',
      count,
      ...block,
      'STREAMS',
      this.stream,
      from,
    );
    return decodeReadGroup(reply);
  }

  /** Takes over entries that other (dead) consumers have held unacknowledged for claimIdleMs, then forgets those consumers. */
  private async claimAbandoned(): Promise<void> {
    let start = '0-0';
    do {
      const reply = decodeAutoClaim(
        await this.redis.callBuffer(
          'XAUTOCLAIM',
          this.stream,
          this.group,
          this.consumer,
          this.settings.claimIdleMs,
          start,
          'COUNT',
          this.settings.batch,
        ),
      );
      if (reply.deleted.length > 0) {
        this.stats.deleted += reply.deleted.length;
        this.log.error(
          { ids: reply.deleted.slice(0, 20), count: reply.deleted.length },
          'abandoned outbox entries were deleted from the stream before they were handled; run a reconciliation',
        );
      }
      if (reply.entries.length > 0) {
        this.stats.claimed += reply.entries.length;
        this.log.warn(
          { entries: reply.entries.length, from: reply.entries[0]?.id },
          'took over entries abandoned by another consumer',
        );
        await this.handle(reply.entries);
      }
      start = reply.next;
    } while (start !== '0-0' && !this.stopping);
    // A live consumer refreshes its idle time with every read, at least every blockMs.
    const idleMs = Math.max(this.settings.claimIdleMs, 3 * this.settings.blockMs);
    const forgotten = Number(
      await this.redis.eval(FORGET_IDLE_CONSUMERS, 1, this.stream, this.group, idleMs, this.consumer),
    );
    if (forgotten > 0) this.log.info({ consumers: forgotten }, 'removed idle consumers that held no entries');
  }

  /**
   * Trims what every group of the stream has acknowledged. The boundary is, per group, its
   * oldest pending entry, or (nothing pending) the entry after the last one it was given;
   * the smallest boundary over all groups is the first entry kept. It stays safe while
   * entries are added, delivered and acknowledged meanwhile: new entries get larger ids,
   * and an entry still unacknowledged later was unacknowledged or undelivered now.
   */
  private async trim(): Promise<void> {
    try {
      const groups = decodeGroups(await this.redis.xinfo('GROUPS', this.stream));
      if (!groups.some((g) => g.name === this.group)) return;
      let keepFrom: string | undefined;
      for (const g of groups) {
        const oldest = g.pending > 0 ? decodeOldestPending(await this.redis.xpending(this.stream, g.name)) : undefined;
        const boundary = oldest ?? nextId(g.lastDeliveredId);
        keepFrom = keepFrom === undefined ? boundary : minId(keepFrom, boundary);
      }
      if (keepFrom === undefined) return;
      if (this.settings.trimMaxLen !== undefined) {
        const excess = (await this.redis.xlen(this.stream)) - this.settings.trimMaxLen;
        if (excess <= 0) return;
        const oldest = await this.redis.xrange(this.stream, '-', '+', 'COUNT', Math.min(excess, TRIM_STEP) + 1);
        const firstOverBound = oldest[oldest.length - 1]?.[0];
        if (firstOverBound === undefined) return;
        keepFrom = minId(keepFrom, firstOverBound);
      }
      const removed = await this.redis.xtrim(this.stream, 'MINID', keepFrom);
      this.stats.trimmed += removed;
      if (removed > 0) this.log.debug({ removed, keepFrom }, 'outbox trimmed');
    } catch (err) {
      this.log.warn({ err }, 'outbox trim failed; retrying later');
    }
  }

  /** Makes a blocked XREADGROUP return now (as if it timed out) instead of after blockMs. */
  private async unblockReader(): Promise<void> {
    if (this.readerId === undefined) return;
    try {
      await this.redis.client('UNBLOCK', this.readerId, 'TIMEOUT');
    } catch (err) {
      this.log.debug({ err }, 'CLIENT UNBLOCK refused; waiting for the read to time out');
    }
  }
}
