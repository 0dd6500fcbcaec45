import { createChangeSink } from '../../producers/change-sink';
import { displayKey } from '../../shared/core/bytes';
import type { ConfigFlags } from '../../shared/platform/config/load';
import { FailureStore, type FailureRecord } from '../../shared/core/failure-store';
import {
  parseReplayFilter,
  replayFailed,
  replayRefused,
  type ReplayFilterFlags,
} from '../../features/maintenance/replay';
import { openContext } from '../context';

export interface ReplayFlags extends ReplayFilterFlags {
  dryRun?: boolean;
  list: number;
}

export interface FailuresFlags extends ReplayFilterFlags {
  list: number;
}

/** One line per refused key: db, key, index, reason class, attempts, first and last seen, reason. */
export function formatRecord(rec: FailureRecord): string {
  const iso = (ms: number): string => new Date(ms).toISOString();
  return [
    rec.db,
    displayKey(rec.key),
    rec.index || '-',
    rec.reasonClass,
    rec.attempts,
    iso(rec.firstSeen),
    iso(rec.lastSeen),
    rec.reason.split('\n', 1)[0],
  ].join('\t');
}

/**
 * `replay`: enqueues again the refused keys of the failure store that match every filter, and
 * retries the failed jobs that match (jobs that failed for other reasons: malformed, attempts
 * exhausted). Prints each key (up to --list) and the counts.
 */
export async function replayCommand(flags: ConfigFlags, opts: ReplayFlags): Promise<void> {
  const filter = parseReplayFilter(opts);
  const ctx = await openContext(flags, ['queue-redis']);
  const log = ctx.logger.child({ command: 'replay' });
  let listed = 0;
  try {
    const store = new FailureStore(ctx.queueRedis, ctx.config.queue.prefix);
    const sink = createChangeSink(ctx.config, ctx.queues(), ctx.queueRedis, log, ctx.router);
    const keys = await replayRefused({ store, enqueue: (db, batch) => sink.enqueueKeys(db, batch, 'replay') }, filter, {
      dryRun: opts.dryRun,
      batch: ctx.config.producer.snapshotBatchKeys,
      onMatch: (rec) => {
        if (listed++ < opts.list) process.stdout.write(`${formatRecord(rec)}\n`);
      },
    });
    const jobs = await replayFailed(await ctx.queues().everyQueue(), filter, {
      dryRun: opts.dryRun,
      onMatch: (job) => {
        if (listed++ >= opts.list) return;
        // Job data and failedReason come back from Redis unchecked; a hand-made job may lack either.
        // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition -- see above
        const jobKeys = job.data.keys ?? [];
        const first = displayKey(jobKeys[0] ?? '');
        const shown = jobKeys.length > 1 ? `${first} (+${jobKeys.length - 1} keys)` : first;
        // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition -- see the comment above
        const reason = (job.failedReason ?? '').split('\n', 1)[0];
        process.stdout.write(`job ${job.id}\t${new Date(job.finishedOn ?? 0).toISOString()}\t${shown}\t${reason}\n`);
      },
    });
    const verb = opts.dryRun ? 'would replay' : 'replayed';
    const keyCount = opts.dryRun ? keys.matched : keys.enqueued;
    const jobCount = opts.dryRun ? jobs.matched : jobs.retried;
    const skipped = jobs.skipped > 0 ? ` (${jobs.skipped} no longer failed)` : '';
    process.stdout.write(
      `${verb} ${keyCount} of ${keys.scanned} refused keys and ${jobCount} of ${jobs.scanned} failed jobs${skipped}\n`,
    );
  } finally {
    await ctx.close();
  }
}

/** `failures`: lists the failure store (refused keys), filtered like replay; changes nothing. */
export async function failuresCommand(flags: ConfigFlags, opts: FailuresFlags): Promise<void> {
  const filter = parseReplayFilter(opts);
  const ctx = await openContext(flags, ['queue-redis']);
  try {
    const store = new FailureStore(ctx.queueRedis, ctx.config.queue.prefix);
    const byClass = new Map<string, number>();
    const records = await store.matching(filter);
    records.sort((a, b) => b.lastSeen - a.lastSeen);
    for (const rec of records.slice(0, opts.list)) process.stdout.write(`${formatRecord(rec)}\n`);
    for (const rec of records) byClass.set(rec.reasonClass, (byClass.get(rec.reasonClass) ?? 0) + 1);
    const classes = [...byClass].map(([c, n]) => `${c} ${n}`).join(', ');
    process.stdout.write(`${records.length} refused keys${classes ? ` (${classes})` : ''}\n`);
  } finally {
    await ctx.close();
  }
}
