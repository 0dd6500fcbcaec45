import type { Job } from 'bullmq';
import { UsageError } from '../../shared/platform/errors';
import { globToRegExp } from '../../shared/core/mapping/glob';
import {
  matchesRecord,
  type FailureRecord,
  type FailureStore,
  type ReplayFilter,
} from '../../shared/core/failure-store';

export type { ReplayFilter };
import type { SyncJobData, SyncQueue } from '../../shared/core/queue';

export interface ReplayFilterFlags {
  reason?: string;
  pattern?: string;
  since?: string;
  until?: string;
}

export interface ReplayResult {
  /** Failed jobs looked at. */
  scanned: number;
  /** Of those, the ones matching the filter. */
  matched: number;
  retried: number;
  /** Matched but no longer failed when their turn came (retried or removed meanwhile). */
  skipped: number;
}

export interface ReplayOptions {
  dryRun?: boolean;
  /** Failed jobs read per page. */
  pageSize?: number;
  /** Called for each matching job, before it is retried (or instead, with dryRun). */
  onMatch?: (job: Job<SyncJobData, void>) => void;
}

/** Builds the filter from command-line values; a bad value is a UsageError naming the flag. */
export function parseReplayFilter(flags: ReplayFilterFlags): ReplayFilter {
  const filter: ReplayFilter = {};
  if (flags.reason !== undefined) {
    try {
      filter.reason = new RegExp(flags.reason);
    } catch (err) {
      throw flagError('--reason', `is not a valid regular expression: ${(err as Error).message}`);
    }
  }
  if (flags.pattern !== undefined) filter.pattern = globToRegExp(flags.pattern);
  for (const name of ['since', 'until'] as const) {
    const value = flags[name];
    if (value === undefined) continue;
    const ms = Date.parse(value);
    if (Number.isNaN(ms))
      throw flagError(`--${name}`, `is not a date/time (use ISO 8601, e.g. 2026-11-26T14:00:00Z): ${value}`);
    filter[name] = ms;
  }
  return filter;
}

function flagError(flag: string, reason: string): UsageError {
  return new UsageError(`invalid arguments:\n  - ${flag}: ${reason}`);
}

export function matchesFilter(
  job: Pick<Job<SyncJobData, void>, 'failedReason' | 'finishedOn' | 'data'>,
  filter: ReplayFilter,
): boolean {
  // BullMQ types failedReason as string, but a job that failed without a message has none.
  // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition -- see above
  if (filter.reason && !filter.reason.test(job.failedReason ?? '')) return false;
  if (filter.since !== undefined || filter.until !== undefined) {
    const at = job.finishedOn;
    if (at === undefined) return false;
    if (filter.since !== undefined && at < filter.since) return false;
    if (filter.until !== undefined && at > filter.until) return false;
  }
  if (filter.pattern) {
    const pattern = filter.pattern;
    // A failed job's data comes back from Redis unchecked (queued by hand, or by an older version).
    // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition -- see above
    const keys = Array.isArray(job.data?.keys) ? job.data.keys : [];
    if (!keys.some((k) => pattern.test(k))) return false;
  }
  return true;
}

/**
 * Retries the failed jobs that match, exactly as the dashboard's retry button does
 * (`job.retry('failed')`): the job goes back to waiting and its worker re-reads the keys, so
 * it writes their current state under a fresh version. Matching ids are gathered first and
 * retried afterwards, because each retry shrinks the failed set that is being paged through;
 * memory grows with the matches, not with the failed set.
 */
export async function replayFailed(
  queues: readonly SyncQueue[],
  filter: ReplayFilter,
  opts: ReplayOptions = {},
): Promise<ReplayResult> {
  const result: ReplayResult = { scanned: 0, matched: 0, retried: 0, skipped: 0 };
  // Every partition, and the queues of former partition counts: a failed job stays where it failed.
  for (const queue of queues) await replayQueue(queue, filter, opts, result);
  return result;
}

async function replayQueue(
  queue: SyncQueue,
  filter: ReplayFilter,
  opts: ReplayOptions,
  result: ReplayResult,
): Promise<void> {
  const pageSize = opts.pageSize ?? 500;
  // A failure arriving while paging shifts the pages: a job may be seen twice, never missed.
  const ids = new Set<string>();
  for (let start = 0; ; start += pageSize) {
    const page = await queue.getFailed(start, start + pageSize - 1);
    for (const job of page) {
      // A job removed between BullMQ's listing and its load comes back as undefined (typed Job).
      // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition -- see above
      if (!job) continue;
      if (job.id !== undefined && ids.has(job.id)) continue;
      result.scanned++;
      if (!matchesFilter(job, filter)) continue;
      if (job.id === undefined) continue;
      result.matched++;
      opts.onMatch?.(job);
      ids.add(job.id);
    }
    if (page.length < pageSize) break;
  }
  if (opts.dryRun) return;
  for (const id of ids) {
    const job = await queue.getJob(id);
    if (!job || !(await job.isFailed())) {
      result.skipped++;
      continue;
    }
    try {
      await job.retry('failed');
      result.retried++;
    } catch {
      // Retried, removed or taken by someone else between the check and the retry.
      result.skipped++;
    }
  }
}

export interface RefusedReplayResult {
  /** Records in the failure store looked at. */
  scanned: number;
  matched: number;
  /** Keys enqueued again (0 with dryRun). */
  enqueued: number;
}

/** What replaying refused keys needs: the store, and a way to enqueue keys through the versioned path. */
export interface RefusedReplayDeps {
  store: FailureStore;
  enqueue(db: number, keys: readonly string[]): Promise<number>;
}

/**
 * Enqueues the refused keys that match, `batch` per job. Their records stay: a worker drops
 * each once its key indexes fine, or updates it (attempts + 1) when the key is refused again,
 * so a replay that did not help is visible as such.
 */
export async function replayRefused(
  deps: RefusedReplayDeps,
  filter: ReplayFilter,
  opts: { dryRun?: boolean; batch?: number; onMatch?: (rec: FailureRecord) => void } = {},
): Promise<RefusedReplayResult> {
  const batch = opts.batch ?? 500;
  const result: RefusedReplayResult = { scanned: 0, matched: 0, enqueued: 0 };
  const byDb = new Map<number, string[]>();
  for await (const rec of deps.store.records()) {
    result.scanned++;
    if (!matchesRecord(rec, filter)) continue;
    result.matched++;
    opts.onMatch?.(rec);
    if (opts.dryRun) continue;
    const keys = byDb.get(rec.db) ?? [];
    keys.push(rec.key);
    byDb.set(rec.db, keys);
  }
  for (const [db, keys] of byDb) {
    for (let i = 0; i < keys.length; i += batch) result.enqueued += await deps.enqueue(db, keys.slice(i, i + batch));
  }
  return result;
}
