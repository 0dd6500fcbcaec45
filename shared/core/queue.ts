import { Queue, type JobsOptions } from 'bullmq';
import type { Progress } from '../platform/progress';
import type { RedisClient } from '../platform/redis';
import type { AppConfig } from '../platform/config/schema';
import { defaultLogger, type Logger } from '../platform/logger';
import { sleep } from '../platform/sleep';

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

export function createQueue(config: AppConfig, connection: RedisClient, logger: Logger = defaultLogger()): SyncQueue {
  const queue = new Queue<SyncJobData, void, string>(config.queue.name, {
    connection,
    prefix: config.queue.prefix,
    defaultJobOptions: defaultJobOptions(config),
  });
  logBullErrors(queue, logger.child({ component: 'queue', queue: config.queue.name }));
  return queue;
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
 * A hash-tagged prefix (`{redis-es-sync}`, for a queue in a Redis Cluster) works the same way.
 */
export function isOwnKey(prefix: string, key: string): boolean {
  return key.startsWith(`${prefix}:`);
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
export async function waitUntilDrained(queue: SyncQueue, opts: DrainOptions = {}): Promise<void> {
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

/** Jobs not yet finished: waiting, active, delayed or prioritized. */
export async function unfinishedJobs(queue: SyncQueue): Promise<number> {
  const counts = await queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized', 'waiting-children');
  return Object.values(counts).reduce((a, b) => a + b, 0);
}
