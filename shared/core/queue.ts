import { Queue, type JobsOptions, type JobType } from 'bullmq';
import type { Progress } from '../platform/progress';
import type { RedisClient } from '../platform/redis';
import type { AppConfig } from '../platform/config/schema';
import { defaultLogger, type Logger } from '../platform/logger';
import { sleep } from '../platform/sleep';
import { isPartitionKey, partitionOf, partitionQueues } from './partitions';

/** The passes every mode shares (the host's snapshot and reconciliation, maintenance commands). */
export type PassSource = 'snapshot' | 'reconcile' | 'replay' | 'resync' | 'repair';

/**
 * The source a capture mode's live changes carry. Each mode names its own
 * (producers/capture/<mode>/config.ts) and the capture registry lists them, so this contract
 * names no mode; the brand keeps an arbitrary string from passing for one.
 */
export type CaptureModeSource = string & { readonly __brand: 'CaptureModeSource' };

/** Mints a mode's job source; called once per mode, where the mode declares itself. */
export function captureModeSource(name: string): CaptureModeSource {
  return name as CaptureModeSource;
}

/** How a change was seen; kept on the job for logs and the dashboard. */
export type CaptureSource = PassSource | CaptureModeSource;

/**
 * A job names keys, never values: the worker reads each key's state when it writes, so a
 * job can be retried, replayed or processed late and still write the current value.
 * `v` is the capture version of keys[0]; keys[i] was captured as v + i.
 */
export interface SyncJobData {
  db: number;
  keys: string[];
  v: number;
  /** Capture time (ms since epoch), for the capture-to-indexed lag. */
  t: number;
  src: CaptureSource;
}

/** Live changes: the keys captured within one flush of the change sink. */
export const CHANGE_JOB = 'change';
/** Many keys from a snapshot or reconciliation pass. */
export const BATCH_JOB = 'batch';

export type SyncQueue = Queue<SyncJobData, void>;

/** A job for one partition. */
export interface PartitionJob {
  partition: number;
  name: string;
  data: SyncJobData;
}

/** Job counts by state, as BullMQ's getJobCounts answers them. */
export type JobCounts = Record<string, number>;

/** What the queue Redis holds for a set of queues: how to count their jobs. */
export interface CountedQueue {
  getJobCounts(...types: JobType[]): Promise<JobCounts>;
}

interface Layouts {
  byCount: Map<number, SyncQueue[]>;
  registered?: Promise<unknown>;
}

/**
 * The queue of the pipeline: `queue.partitions` BullMQ queues (shared/core/partitions.ts names
 * them), each key's jobs in the partition its (db, key) hashes to. Layouts of other partition
 * counts (left by a change of `queue.partitions`) are found through a registry in the queue
 * Redis, a set of the counts every enqueuer used, so that workers drain them and `--wait`,
 * replay and the dashboard see them; the count 1 (the queue as it was before partitions) is
 * always among them.
 */
export class SyncQueues implements CountedQueue {
  /** The queues of this configuration's layout, partition p at index p. */
  readonly partitions: readonly SyncQueue[];

  private constructor(
    private readonly settings: { name: string; prefix: string; count: number; jobOptions: JobsOptions },
    private readonly connection: RedisClient,
    private readonly logger: Logger,
    private readonly layouts: Layouts,
    private readonly fence?: () => Promise<void>,
  ) {
    this.partitions = this.layout(settings.count);
  }

  static create(config: AppConfig, connection: RedisClient, logger: Logger = defaultLogger()): SyncQueues {
    const { name, prefix, partitions } = config.queue;
    return new SyncQueues(
      { name, prefix, count: partitions, jobOptions: defaultJobOptions(config) },
      connection,
      logger,
      { byCount: new Map() },
    );
  }

  /** The same queues, but every add first runs `check` (the producer lease: enqueues are fenced). */
  fenced(check: () => Promise<void>): SyncQueues {
    return new SyncQueues(this.settings, this.connection, this.logger, this.layouts, check);
  }

  get count(): number {
    return this.settings.count;
  }

  partitionOf(db: number, key: string): number {
    return partitionOf(db, key, this.settings.count);
  }

  /** The queues of a layout of `count` partitions (created on first use, closed by close()). */
  layout(count: number): SyncQueue[] {
    let queues = this.layouts.byCount.get(count);
    if (!queues) {
      queues = partitionQueues(this.settings.prefix, this.settings.name, count).map((q) => {
        const queue = new Queue<SyncJobData, void, string>(q.name, {
          connection: this.connection,
          prefix: q.prefix,
          defaultJobOptions: this.settings.jobOptions,
        });
        logBullErrors(queue, this.logger.child({ component: 'queue', queue: q.name }));
        return queue;
      });
      this.layouts.byCount.set(count, queues);
    }
    return queues;
  }

  /** Adds jobs to their partitions, after one fence check and the layout's registration. */
  async addBulk(jobs: readonly PartitionJob[]): Promise<void> {
    if (jobs.length === 0) return;
    if (this.fence) await this.fence();
    await this.register();
    const byPartition = new Map<number, { name: string; data: SyncJobData }[]>();
    for (const job of jobs) {
      const list = byPartition.get(job.partition) ?? [];
      list.push({ name: job.name, data: job.data });
      byPartition.set(job.partition, list);
    }
    await Promise.all(
      [...byPartition].map(([p, list]) => {
        const queue = this.partitions[p];
        if (!queue) throw new RangeError(`partition ${String(p)} of ${String(this.count)}`);
        return queue.addBulk(list);
      }),
    );
  }

  /** Partition counts other than this configuration's whose queues may hold jobs. */
  async formerCounts(): Promise<number[]> {
    const members = await this.connection.smembers(registryKey(this.settings.prefix, this.settings.name));
    const counts = new Set([1, ...members.map(Number).filter((n) => Number.isInteger(n) && n >= 1)]);
    counts.delete(this.settings.count);
    return [...counts].sort((a, b) => a - b);
  }

  /** Every queue jobs may be in: this layout's partitions, then those of former layouts. */
  async everyQueue(): Promise<SyncQueue[]> {
    const former = await this.formerCounts();
    return [...this.partitions, ...former.flatMap((c) => this.layout(c))];
  }

  /** Counts summed over every queue jobs may be in. */
  async getJobCounts(...types: JobType[]): Promise<JobCounts> {
    const all = await Promise.all((await this.everyQueue()).map((q) => q.getJobCounts(...types)));
    const sum: JobCounts = {};
    for (const counts of all) for (const [state, n] of Object.entries(counts)) sum[state] = (sum[state] ?? 0) + n;
    return sum;
  }

  /** Whether a partition of this layout is paused (its jobs are not taken). */
  async isPaused(): Promise<boolean> {
    return (await Promise.all(this.partitions.map((q) => q.isPaused()))).some(Boolean);
  }

  async close(): Promise<void> {
    await Promise.all([...this.layouts.byCount.values()].flat().map((q) => q.close()));
  }

  /** Records this layout, once per process, before its first job: workers of other layouts then drain it. */
  private register(): Promise<unknown> {
    if (this.settings.count === 1) return Promise.resolve();
    this.layouts.registered ??= this.connection
      .sadd(registryKey(this.settings.prefix, this.settings.name), String(this.settings.count))
      .catch((err: unknown) => {
        this.layouts.registered = undefined;
        throw err;
      });
    return this.layouts.registered;
  }
}

/** The set of the partition counts enqueued into, per queue name. */
export function registryKey(prefix: string, name: string): string {
  return `${prefix}:partitions:${name}`;
}

/**
 * A BullMQ Queue, Worker, QueueEvents or FlowProducer without an 'error' listener hands its
 * connection errors to console.error, multi-line and with the failed command's arguments
 * (`AUTH <password>`). Each one the tool creates goes through this instead; the message
 * only, once per change, as ioredis repeats it on every reconnect attempt.
 */
export function logBullErrors(
  emitter: { on(event: 'error', listener: (err: Error) => void): unknown },
  log: Logger,
): void {
  let last = '';
  let lastAt = 0;
  emitter.on('error', (err: Error) => {
    const now = Date.now();
    if (err.message === last && now - lastAt < 60_000) return;
    last = err.message;
    lastAt = now;
    log.warn({ err }, 'queue connection error');
  });
}

export function defaultJobOptions(config: AppConfig): JobsOptions {
  return {
    attempts: config.queue.attempts,
    backoff: { type: 'exponential', delay: 1000 },
    removeOnComplete: { count: config.queue.keepCompleted },
    removeOnFail: { count: config.queue.keepFailed },
  };
}

/**
 * Keys this tool writes in a Redis; never captured even when the queue shares the source Redis.
 * A hash-tagged prefix (`{redis-es-sync}`, for a queue in a Redis Cluster) works the same way;
 * so do the partitions' queues, under the prefix without braces (shared/core/partitions.ts).
 */
export function isOwnKey(prefix: string, key: string): boolean {
  return key.startsWith(`${prefix}:`) || isPartitionKey(prefix, key);
}

export interface DrainOptions {
  everyMs?: number;
  /** Told the jobs drained so far and the total seen (jobs enqueued meanwhile raise it). */
  progress?: Progress;
  /** Warned when nothing drained for `stallWarnMs`: usually no worker runs. */
  logger?: Logger;
  stallWarnMs?: number;
}

/** Resolves once the queue has no unfinished job (`--wait` of the commands that enqueue). */
export async function waitUntilDrained(queue: CountedQueue, opts: DrainOptions = {}): Promise<void> {
  const everyMs = opts.everyMs ?? 250;
  const stallWarnMs = opts.stallWarnMs ?? 30000;
  let previous: number | undefined;
  let done = 0;
  let movedAt = Date.now();
  for (;;) {
    const left = await unfinishedJobs(queue);
    if (previous !== undefined && left < previous) {
      opts.progress?.increment(previous - left);
      done += previous - left;
      movedAt = Date.now();
    }
    opts.progress?.setTotal(done + left);
    if (left === 0) return;
    if (Date.now() - movedAt >= stallWarnMs) {
      opts.logger?.warn(
        { unfinished: left, forMs: Date.now() - movedAt },
        'the queue is not draining: is a worker running (redis-es-sync worker or run)?',
      );
      movedAt = Date.now();
    }
    previous = left;
    await sleep(everyMs);
  }
}

/** Jobs not yet finished: waiting, active, delayed or prioritized (in every partition of a SyncQueues). */
export async function unfinishedJobs(queue: CountedQueue): Promise<number> {
  const counts = await queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized', 'waiting-children');
  return Object.values(counts).reduce((a, b) => a + b, 0);
}
