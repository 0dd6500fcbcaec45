import { LeaseLostError } from '../shared/errors';
import type { Logger } from '../shared/logger';
import { BATCH_JOB, CHANGE_JOB, changeJobOptions, isOwnKey, type CaptureSource, type SyncJobData, type SyncQueue } from '../shared/queue';
import type { VersionCounter } from '../shared/versions';

export interface ChangeSinkSettings {
  prefix: string;
  /** Changes gathered before one INCRBY and one addBulk. */
  batch: number;
  flushMs: number;
}

interface Buffered {
  db: number;
  key: string;
  t: number;
  src: CaptureSource;
}

/**
 * Where producers put what they capture. Each change gets a version from the shared counter
 * (one INCRBY per batch) and becomes a job carrying key, db and version. Nothing is dropped:
 * when the queue Redis is unreachable, changes stay buffered and the flush is retried.
 */
export class ChangeSink {
  private buffer = new Map<string, Buffered>();
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> = Promise.resolve();
  private failures = 0;
  captured = 0;
  enqueued = 0;

  constructor(
    private readonly queue: SyncQueue,
    private readonly counter: VersionCounter,
    private readonly settings: ChangeSinkSettings,
    private readonly logger: Logger,
  ) {}

  /** Records that a key changed. Repeats before the next flush coalesce: one job reads the latest state. */
  capture(db: number, key: string, src: CaptureSource = 'notification'): void {
    if (isOwnKey(this.settings.prefix, key)) return;
    this.captured++;
    const id = `${db}\u0000${key}`;
    if (!this.buffer.has(id)) this.buffer.set(id, { db, key, t: Date.now(), src });
    if (this.buffer.size >= this.settings.batch) void this.flush();
    else if (!this.timer) this.timer = setTimeout(() => void this.flush(), this.settings.flushMs);
  }

  /** Enqueues many keys of one database as a single job (snapshots, reconciliation). */
  async enqueueKeys(db: number, keys: readonly string[], src: CaptureSource): Promise<number> {
    const own = keys.filter((k) => !isOwnKey(this.settings.prefix, k));
    if (own.length === 0) return 0;
    const v = await this.counter.allocate(own.length);
    const data: SyncJobData = { db, keys: own, v, t: Date.now(), src };
    await this.queue.add(BATCH_JOB, data);
    this.enqueued += own.length;
    return own.length;
  }

  /** Enqueues everything buffered so far; resolves when it is in the queue. */
  flush(): Promise<void> {
    this.flushing = this.flushing.then(() => this.flushOnce());
    return this.flushing;
  }

  get buffered(): number {
    return this.buffer.size;
  }

  private async flushOnce(): Promise<void> {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    while (this.buffer.size > 0) {
      const batch = [...this.buffer.values()].slice(0, this.settings.batch);
      for (const b of batch) this.buffer.delete(`${b.db}\u0000${b.key}`);
      try {
        const first = await this.counter.allocate(batch.length);
        await this.queue.addBulk(
          batch.map((b, i) => ({
            name: CHANGE_JOB,
            data: { db: b.db, keys: [b.key], v: first + i, t: b.t, src: b.src },
            opts: changeJobOptions(b.db, b.key),
          })),
        );
        this.enqueued += batch.length;
        this.failures = 0;
      } catch (err) {
        if (err instanceof LeaseLostError) {
          // The new leader reconciled on takeover, so these changes are covered without us.
          this.logger.warn({ dropped: batch.length + this.buffer.size, reason: err.message }, 'not the producer lease holder any more: dropping buffered changes');
          this.buffer.clear();
          return;
        }
        // Put them back (newer captures of the same key win the slot; either is fine) and retry.
        for (const b of batch) {
          const id = `${b.db}\u0000${b.key}`;
          if (!this.buffer.has(id)) this.buffer.set(id, b);
        }
        this.failures++;
        const delay = Math.min(100 * 2 ** Math.min(this.failures, 7), 10000);
        this.logger.warn({ err: (err as Error).message, buffered: this.buffer.size, retryInMs: delay }, 'enqueue failed; changes kept in memory');
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  }
}
