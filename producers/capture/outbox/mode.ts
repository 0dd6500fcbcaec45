import type { Redis } from 'ioredis';
import { displayKey } from '../../../shared/core/bytes';
import { LeaseLostError, errorMessage } from '../../../shared/platform/errors';
import type { Logger } from '../../../shared/platform/logger';
import { outboxMalformed } from '../../../shared/platform/metrics';
import { closeRedis, type RedisClient } from '../../../shared/platform/redis';
import type { ChangeSink } from '../../change-sink';
import type { Fence } from '../../lease';
import type { CaptureContext, CaptureMode } from '../types';
import {
  decodeAutoClaim,
  decodeGroups,
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

/** Trimming needs a few round trips; once a second keeps the stream short without adding load per batch. */
const TRIM_EVERY_MS = 1000;
/** With `trimMaxLen`, at most this many entries are looked at (and removed) per trim. */
const TRIM_STEP = 10000;

export interface OutboxStats {
  /** Entries handled: new, redelivered and claimed. */
  read: number;
  /** Own pending entries read again (start-up, or after an error) with ID 0. */
  redelivered: number;
  /** Entries taken over from other consumers with XAUTOCLAIM. */
  claimed: number;
  acked: number;
  /** Entries without a usable `key` (or with a bad `db`): logged, acknowledged, skipped. */
  malformed: number;
  /** Empty `key` fields of entries whose other keys were captured. */
  malformedFields: number;
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
  readonly stats: OutboxStats = { read: 0, redelivered: 0, claimed: 0, acked: 0, malformed: 0, malformedFields: 0, deleted: 0, trimmed: 0 };
  readonly stream: string;
  readonly group: string;
  readonly consumer: string;
  private readonly settings: CaptureContext['config']['producer']['outbox'];
  private readonly streamDb: number;
  private readonly rules: EntryRules;
  private readonly fence: Fence;
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
  private lastTrim = 0;

  constructor(private readonly deps: CaptureContext) {
    const { config } = deps;
    this.settings = config.producer.outbox;
    this.streamDb = config.redis.databases[0];
    ({ stream: this.stream, group: this.group, consumer: this.consumer } = outboxNames(config));
    this.rules = { defaultDb: this.streamDb, databases: new Set(config.redis.databases) };
    this.log = deps.logger;
    // Entries are acknowledged after each flush, and flush() enqueues held hot keys at once.
    this.sink = deps.sink;
    this.fence = deps.fence;
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
    this.reader = this.deps.source.subscriber('', 'outbox-reader', this.streamDb);
    this.readerId = Number(await this.reader.client('ID'));
    this.reader.on('ready', () => {
      // A reconnect gets a new client id; CLIENT UNBLOCK at stop needs the current one.
      this.reader?.client('ID').then(
        (id) => (this.readerId = Number(id)),
        () => (this.readerId = undefined),
      );
    });
    // Everything an earlier tenure did not acknowledge is still in the group: its own pending
    // entries (read from 0), other consumers' (claimed once idle for claimIdleMs), and what nobody was given yet.
    this.log.info(
      { created, startFrom: this.settings.startFrom },
      created ? 'reading the outbox stream; new group, reconciling what existed before it' : "reading the outbox stream: resuming from the group's pending and undelivered entries",
    );
    this.loop = this.run();
    // A new group has seen nothing written before it: index what already exists once. Later
    // starts resume from the group's own position and need no snapshot.
    if (created) this.deps.requestReconcile();
  }

  /** Resolves once this consumer's own unacknowledged entries are handled (the host then waits for reconciliations). */
  async idle(): Promise<void> {
    await this.caughtUp;
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
   * hand then (entries are flushed before their XACK).
   */
  async close(): Promise<void> {
    await closeRedis(this.reader);
  }

  /** XGROUP CREATE … MKSTREAM; false when the group already exists. */
  private async ensureGroup(from: '0' | '$'): Promise<boolean> {
    try {
      await this.redis.xgroup('CREATE', this.stream, this.group, from, 'MKSTREAM');
      return true;
    } catch (err) {
      if (errorMessage(err).startsWith('BUSYGROUP')) return false;
      throw err;
    }
  }

  /**
   * Own pending entries first (ID 0: read before a crash or an error but not acknowledged),
   * then new ones (`>`). Any error sends the loop back to its own pending entries, so an
   * entry whose enqueue or XACK failed is handled again rather than forgotten.
   */
  private async run(): Promise<void> {
    const reader = this.reader!;
    const { batch, blockMs, claimIdleMs } = this.settings;
    let pendingFrom: string | undefined = '0';
    let failures = 0;
    while (!this.stopping) {
      try {
        if (Date.now() - this.lastClaim >= claimIdleMs / 2) {
          await this.claimAbandoned();
          this.lastClaim = Date.now();
        }
        if (pendingFrom !== undefined) {
          // As Buffers, so a key that is not UTF-8 keeps its bytes (entry.ts decodes them).
          const entries = decodeReadGroup(
            await reader.callBuffer('XREADGROUP', 'GROUP', this.group, this.consumer, 'COUNT', batch, 'STREAMS', this.stream, pendingFrom),
          );
          if (entries.length === 0) {
            pendingFrom = undefined;
            this.markCaughtUp();
            continue;
          }
          this.stats.redelivered += entries.length;
          this.log.info({ entries: entries.length, from: entries[0].id }, 'redelivered own unacknowledged entries');
          await this.handle(entries);
          pendingFrom = entries[entries.length - 1].id;
        } else {
          const entries = decodeReadGroup(
            await reader.callBuffer('XREADGROUP', 'GROUP', this.group, this.consumer, 'COUNT', batch, 'BLOCK', blockMs, 'STREAMS', this.stream, '>'),
          );
          if (entries.length > 0) await this.handle(entries);
        }
        if (Date.now() - this.lastTrim >= TRIM_EVERY_MS) {
          await this.trim();
          this.lastTrim = Date.now();
        }
        failures = 0;
      } catch (err) {
        if (err instanceof LeaseLostError) {
          // Not acknowledged: these entries stay pending and the next leader claims them.
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
              if (created) this.deps.requestReconcile();
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
        for (const key of entry.keys) this.sink.capture(entry.db, key, 'outbox');
        if (entry.emptyKeys !== undefined) {
          this.stats.malformedFields += entry.emptyKeys;
          outboxMalformed.inc({ part: 'field' }, entry.emptyKeys);
          this.log.warn({ id: entry.id, emptyKeys: entry.emptyKeys, fields: raw.fields?.slice(0, 10).map(displayKey) }, 'outbox entry with an empty `key` field: its other keys captured');
        }
      } else if (entry.kind === 'malformed') {
        this.stats.malformed++;
        outboxMalformed.inc({ part: 'entry' });
        this.log.warn({ id: entry.id, reason: entry.reason, fields: raw.fields?.slice(0, 10).map(displayKey) }, 'malformed outbox entry acknowledged and skipped');
      } else {
        this.stats.deleted++;
        this.log.error({ id: entry.id }, 'outbox entry deleted before it was handled: its change is unknown; run a reconciliation');
      }
    }
    await this.sink.flush();
    await this.fence.check();
    await this.redis.xack(this.stream, this.group, ...entries.map((e) => e.id));
    this.stats.acked += entries.length;
  }

  /** Takes over entries that other (dead) consumers have held unacknowledged for claimIdleMs, then forgets those consumers. */
  private async claimAbandoned(): Promise<void> {
    let start = '0-0';
    do {
      const reply = decodeAutoClaim(
        await this.redis.callBuffer('XAUTOCLAIM', this.stream, this.group, this.consumer, this.settings.claimIdleMs, start, 'COUNT', this.settings.batch),
      );
      if (reply.deleted.length > 0) {
        this.stats.deleted += reply.deleted.length;
        this.log.error({ ids: reply.deleted.slice(0, 20), count: reply.deleted.length }, 'abandoned outbox entries were deleted from the stream before they were handled; run a reconciliation');
      }
      if (reply.entries.length > 0) {
        this.stats.claimed += reply.entries.length;
        this.log.warn({ entries: reply.entries.length, from: reply.entries[0].id }, 'took over entries abandoned by another consumer');
        await this.handle(reply.entries);
      }
      start = reply.next;
    } while (start !== '0-0' && !this.stopping);
    // A live consumer refreshes its idle time with every read, at least every blockMs.
    const idleMs = Math.max(this.settings.claimIdleMs, 3 * this.settings.blockMs);
    const forgotten = Number(await this.redis.eval(FORGET_IDLE_CONSUMERS, 1, this.stream, this.group, idleMs, this.consumer));
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
