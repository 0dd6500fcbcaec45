import type { AppConfig } from '../shared/platform/config/schema';
import { LeaseLostError } from '../shared/platform/errors';
import type { RedisClient } from '../shared/platform/redis';
import type { Logger } from '../shared/platform/logger';
import type { KeyRouter } from '../shared/core/mapping/router';
import { changesCaptured, jobsEnqueued, keysEnqueued } from '../shared/platform/metrics';
import {
  BATCH_JOB,
  CHANGE_JOB,
  isOwnKey,
  type CaptureSource,
  type PartitionJob,
  type SyncQueues,
} from '../shared/core/queue';
import { VersionCounter, versionKey } from '../shared/core/versions';
import { backoffDelay, REDIS_LOOP } from '../shared/platform/retry';
import { sleep } from '../shared/platform/sleep';

/** How often a pass held back by a full queue looks again. */
const ROOM_POLL_MS = 100;

export interface ChangeSinkSettings {
  prefix: string;
  /** Keys gathered before one INCRBY and one job. */
  batch: number;
  flushMs: number;
  /**
   * A key enqueued less than this long ago is held until the window has passed, so a burst on
   * a hot key costs one write per window instead of one per change; its last change is always
   * enqueued when the window ends. 0 turns holding off.
   */
  hotKeyWindowMs: number;
  /** The capture mode, as the changes-captured metric labels it. */
  mode?: string;
  /** waitForRoom waits while the queue holds this many waiting jobs or more; 0: never. */
  maxWaitingJobs?: number;
  /**
   * Whether the configuration syncs a key (its database and the mapping rules); others are
   * not enqueued, because the worker refuses jobs naming them (workers/job-guard.ts).
   */
  synced?: (db: number, key: string) => boolean;
}

/** What one enqueueBatch put in the queue. */
export interface EnqueuedBatch {
  keys: number;
  jobs: number;
}

interface Captured {
  db: number;
  key: string;
  /** The queue partition the key's jobs go to. */
  partition: number;
  t: number;
  src: CaptureSource;
  /** Its place in the buffer: set on entering it, increasing in the buffer's order (flushBuffer). */
  seq: number;
}

/**
 * Where producers put what they capture. Changes are coalesced per key and enqueued in batches:
 * one INCRBY for the versions and one job per queue partition, database and source, carrying
 * the keys, never the values, so a job's cost in the queue Redis is shared by all its keys.
 *
 * No change is lost: a key captured after its job was enqueued is enqueued again (right away,
 * or when its hot-key window ends), and every job is processed after it was enqueued, so some
 * job reads each key after its last change. When the queue Redis is unreachable, changes stay
 * buffered and the flush is retried. Once the queue refuses an enqueue with LeaseLostError the
 * sink is spent: what it holds is dropped and every later flush and enqueue rejects with that
 * error, so a caller never takes a flush for done and never moves a position past a drop.
 */
export class ChangeSink {
  private buffer = new Map<string, Captured>();
  /** Hot keys waiting for their window to end, by when it ends. */
  private held = new Map<string, Captured & { due: number }>();
  /** When each key was last enqueued, for keys enqueued within the last window. */
  private recent = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  private releaseTimer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> = Promise.resolve();
  /** The last `seq` given to a buffered change. */
  private seq = 0;
  private failures = 0;
  /** Set once the lease was lost; the buffer was dropped then. */
  private lost: LeaseLostError | undefined;
  captured = 0;
  enqueued = 0;
  /** `captured` as last added to the metric: it is reported per flush, not per change. */
  private capturedReported = 0;

  constructor(
    private readonly queue: SyncQueues,
    private readonly counter: VersionCounter,
    private readonly settings: ChangeSinkSettings,
    private readonly logger: Logger,
  ) {}

  /** Records that a key changed. Repeats before its next enqueue coalesce: one job reads the latest state. */
  capture(db: number, key: string, src: CaptureSource): void {
    if (isOwnKey(this.settings.prefix, key) || this.lost || this.settings.synced?.(db, key) === false) return;
    this.captured++;
    const id = idOf(db, key);
    if (this.buffer.has(id) || this.held.has(id)) return;
    const now = Date.now();
    const last = this.recent.get(id);
    if (last !== undefined && now - last < this.settings.hotKeyWindowMs) {
      this.held.set(id, {
        db,
        key,
        partition: this.queue.partitionOf(db, key),
        t: now,
        src,
        seq: 0,
        due: last + this.settings.hotKeyWindowMs,
      });
      this.scheduleRelease();
      return;
    }
    this.buffer.set(id, { db, key, partition: this.queue.partitionOf(db, key), t: now, src, seq: ++this.seq });
    this.scheduleFlush();
  }

  /**
   * Resolves once the queue holds fewer than `maxWaitingJobs` waiting jobs (or at once when
   * that is 0, or when `signal` aborts). A snapshot calls it before each SCAN page: a keyspace
   * far larger than the workers' pace would otherwise sit in the queue Redis as jobs, its memory
   * growing with the keyspace instead of staying bounded.
   */
  async waitForRoom(signal?: AbortSignal): Promise<void> {
    const max = this.settings.maxWaitingJobs ?? 0;
    if (max === 0) return;
    let paused = false;
    while (!signal?.aborted) {
      const counts = await this.queue.getJobCounts('waiting', 'prioritized');
      const waiting = (counts.waiting ?? 0) + (counts.prioritized ?? 0);
      if (waiting < max) break;
      if (!paused) this.logger.debug({ waiting, max }, 'queue full: the pass waits for the workers');
      paused = true;
      await sleep(ROOM_POLL_MS, signal);
    }
  }

  /** Enqueues many keys of one database as one job per partition (snapshots, reconciliation); resolves to the keys enqueued. */
  async enqueueKeys(db: number, keys: readonly string[], src: CaptureSource): Promise<number> {
    return (await this.enqueueBatch(db, keys, src)).keys;
  }

  /**
   * enqueueKeys, telling the jobs too: one per partition the keys fall in (or more, of at most
   * `jobKeys` keys each, in even shares), so a pass that reports its jobs (a snapshot) counts what the queue
   * holds whatever `queue.partitions` is. However many jobs, the keys cost one INCRBY and one
   * addBulk: a snapshot hands a whole SCAN page here, and every round trip to the queue Redis
   * costs both sides more than a job's share of the keys does.
   */
  async enqueueBatch(
    db: number,
    keys: readonly string[],
    src: CaptureSource,
    jobKeys = Number.POSITIVE_INFINITY,
  ): Promise<EnqueuedBatch> {
    if (this.lost) throw this.lost;
    const synced = this.settings.synced;
    const own = keys.filter((k) => !isOwnKey(this.settings.prefix, k) && synced?.(db, k) !== false);
    if (own.length === 0) return { keys: 0, jobs: 0 };
    const byPartition = new Map<number, string[]>();
    for (const key of own) {
      const p = this.queue.partitionOf(db, key);
      const list = byPartition.get(p) ?? [];
      list.push(key);
      byPartition.set(p, list);
    }
    let v = await this.counter.allocate(own.length);
    const t = Date.now();
    const jobs: PartitionJob[] = [];
    for (const [partition, list] of byPartition) {
      // Even shares rather than full jobs and a small remainder: each job is worth its own cost.
      const parts = Math.max(1, Math.ceil(list.length / jobKeys));
      for (let j = 0; j < parts; j++) {
        const part =
          parts === 1
            ? list
            : list.slice(Math.floor((j * list.length) / parts), Math.floor(((j + 1) * list.length) / parts));
        jobs.push({ partition, name: BATCH_JOB, data: { db, keys: part, v, t, src } });
        v += part.length;
      }
    }
    try {
      await this.queue.addBulk(jobs);
    } catch (err) {
      if (err instanceof LeaseLostError) this.loseLease(err, own.length);
      throw err;
    }
    this.enqueued += own.length;
    countEnqueued(this.queue, jobs);
    return { keys: own.length, jobs: jobs.length };
  }

  /**
   * Enqueues everything captured so far, held hot keys included; resolves when it is in the
   * queue, rejects with LeaseLostError when some of it was dropped instead.
   */
  flush(): Promise<void> {
    for (const [id, h] of this.held) this.buffer.set(id, { ...h, seq: ++this.seq });
    this.held.clear();
    // Nothing is held any more; its timer would only keep a stopping process alive.
    if (this.releaseTimer) clearTimeout(this.releaseTimer);
    this.releaseTimer = undefined;
    return this.flushBuffer();
  }

  /** Changes captured and not yet enqueued. */
  get buffered(): number {
    return this.buffer.size + this.held.size;
  }

  /** Whether the lease was lost: nothing more is enqueued through this sink. */
  get leaseLost(): boolean {
    return this.lost !== undefined;
  }

  private flushBuffer(): Promise<void> {
    // Each flush reports its own outcome; a failed one before it only matters through `lost`.
    this.flushing = this.flushing.catch(() => undefined).then(() => this.flushOnce());
    return this.flushing;
  }

  /** The `seq` of the oldest buffered change (the buffer is in `seq` order), or none. */
  private oldestSeq(): number {
    const first = this.buffer.values().next();
    return first.done === true ? Infinity : first.value.seq;
  }

  /**
   * A batch whose enqueue failed goes back to the front, in its order, so the flush that took it
   * still ends with it; a newer capture of one of its keys merges into its older place (the job
   * reads the key's state then, whichever capture it came from).
   */
  private putBack(batch: Captured[]): void {
    const rest = this.buffer;
    this.buffer = new Map();
    for (const c of batch.sort((a, b) => a.seq - b.seq)) {
      const id = idOf(c.db, c.key);
      rest.delete(id);
      this.buffer.set(id, c);
    }
    for (const [id, c] of rest) this.buffer.set(id, c);
  }

  /** A flush nobody awaits: a lease lost there is reported by the next flush() the owner calls. */
  private flushInBackground(): void {
    this.flushBuffer().catch(() => undefined);
  }

  private scheduleFlush(): void {
    if (this.buffer.size >= this.settings.batch) this.flushInBackground();
    else this.timer ??= setTimeout(() => this.flushInBackground(), this.settings.flushMs);
  }

  private scheduleRelease(): void {
    if (this.releaseTimer) return;
    let next = Infinity;
    for (const h of this.held.values()) next = Math.min(next, h.due);
    this.releaseTimer = setTimeout(
      () => {
        this.releaseTimer = undefined;
        const now = Date.now();
        for (const [id, h] of this.held) {
          if (h.due > now) continue;
          this.held.delete(id);
          this.buffer.set(id, { ...h, seq: ++this.seq });
        }
        if (this.buffer.size > 0) this.flushInBackground();
        if (this.held.size > 0) this.scheduleRelease();
      },
      Math.max(0, next - Date.now()),
    );
  }

  /**
   * Enqueues what the buffer holds when it starts, not what arrives while it runs: under a
   * capture rate the queue cannot keep pace with, a flush that waited for an empty buffer would
   * never end, and a caller waiting on it (a replication checkpoint, a stopping link) with it.
   * A change captured after the start finds no timer and schedules the next flush itself.
   */
  private async flushOnce(): Promise<void> {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    const upTo = this.seq;
    if (this.lost) throw this.lost;
    if (this.captured > this.capturedReported) {
      changesCaptured.inc({ mode: this.settings.mode ?? 'unspecified' }, this.captured - this.capturedReported);
      this.capturedReported = this.captured;
    }
    while (this.oldestSeq() <= upTo) {
      // Grouped so each job's keys have consecutive versions.
      const batch = takeFirst(this.buffer, this.settings.batch).sort(
        (a, b) => a.partition - b.partition || a.db - b.db || (a.src < b.src ? -1 : a.src > b.src ? 1 : 0),
      );
      try {
        const first = await this.counter.allocate(batch.length);
        const jobs = toJobs(batch, first);
        await this.queue.addBulk(jobs);
        this.enqueued += batch.length;
        countEnqueued(this.queue, jobs);
        this.failures = 0;
        this.remember(batch);
      } catch (err) {
        if (err instanceof LeaseLostError) {
          // Not ours to enqueue any more. The caller gets the error, so it persists and
          // acknowledges nothing past these changes: the next leader covers them from there.
          this.loseLease(err, batch.length);
          throw err;
        }
        this.putBack(batch);
        this.failures++;
        const delay = backoffDelay(REDIS_LOOP, this.failures);
        this.logger.warn(
          { err, buffered: this.buffer.size, retryInMs: delay },
          'enqueue failed; changes kept in memory',
        );
        await sleep(delay);
      }
    }
  }

  private loseLease(err: LeaseLostError, inHand: number): void {
    this.logger.warn(
      { err, dropped: inHand + this.buffered },
      'not the producer lease holder any more: dropping captured changes; nothing past them is acknowledged or checkpointed',
    );
    this.lost ??= err;
    this.buffer.clear();
    this.held.clear();
    // Nothing is left to flush or release, and a pending timer would keep a stopping process alive.
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.releaseTimer) clearTimeout(this.releaseTimer);
    this.releaseTimer = undefined;
  }

  /** Notes when keys were enqueued, forgetting those whose window has passed. */
  private remember(batch: readonly Captured[]): void {
    const window = this.settings.hotKeyWindowMs;
    if (window <= 0) return;
    const now = Date.now();
    for (const [id, at] of this.recent) {
      // Insertion order is enqueue order, so the first entry still inside the window ends the sweep.
      if (now - at < window) break;
      this.recent.delete(id);
    }
    for (const c of batch) {
      const id = idOf(c.db, c.key);
      this.recent.delete(id);
      this.recent.set(id, now);
    }
  }
}

/** The sink a configuration describes, with versions from the counter in the queue Redis. */
export function createChangeSink(
  config: AppConfig,
  queue: SyncQueues,
  queueRedis: RedisClient,
  logger: Logger,
  router: KeyRouter,
): ChangeSink {
  const { prefix } = config.queue;
  const { enqueueBatch, enqueueFlushMs, hotKeyWindowMs, snapshotMaxWaitingJobs } = config.producer;
  const databases = config.redis.databases;
  const synced = (db: number, key: string): boolean => databases.includes(db) && router.route(db, key) !== undefined;
  return new ChangeSink(
    queue,
    new VersionCounter(queueRedis, versionKey(prefix)),
    {
      prefix,
      batch: enqueueBatch,
      flushMs: enqueueFlushMs,
      hotKeyWindowMs,
      mode: config.producer.mode,
      synced,
      maxWaitingJobs: snapshotMaxWaitingJobs,
    },
    logger,
  );
}

function idOf(db: number, key: string): string {
  return `${db}\u0000${key}`;
}

function takeFirst(buffer: Map<string, Captured>, n: number): Captured[] {
  const out: Captured[] = [];
  for (const [id, c] of buffer) {
    if (out.length === n) break;
    out.push(c);
    buffer.delete(id);
  }
  return out;
}

/** One job per partition, database and source (the batch is sorted so); keys[i] of a job has version v + i. */
function toJobs(batch: readonly Captured[], firstVersion: number): PartitionJob[] {
  const groups = new Map<string, PartitionJob>();
  batch.forEach((c, i) => {
    const group = `${String(c.partition)}:${String(c.db)}:${c.src}`;
    const job = groups.get(group);
    if (!job)
      groups.set(group, {
        partition: c.partition,
        name: CHANGE_JOB,
        data: { db: c.db, keys: [c.key], v: firstVersion + i, t: c.t, src: c.src },
      });
    else {
      job.data.keys.push(c.key);
      job.data.t = Math.min(job.data.t, c.t);
    }
  });
  return [...groups.values()];
}

/** Metrics label partitions by their BullMQ queue name, as the workers' do. */
function countEnqueued(queues: SyncQueues, jobs: readonly PartitionJob[]): void {
  for (const { partition, data } of jobs) {
    const labels = { src: data.src, partition: queues.partitions[partition]?.name ?? String(partition) };
    jobsEnqueued.inc(labels, 1);
    keysEnqueued.inc(labels, data.keys.length);
  }
}
