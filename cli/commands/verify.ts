import { createChangeSink } from '../../producers/change-sink';
import { displayKey } from '../../shared/core/bytes';
import type { ConfigFlags } from '../../shared/platform/config/load';
import { createProgress } from '../progress';
import { formatReport, inSync, reportKeys, verify, type VerifyReport } from '../../features/maintenance/verify';
import { openContext, type AppContext } from '../context';

export interface VerifyFlags {
  settleMs: number;
  list: number;
  repair?: boolean;
}

/**
 * Prints `checked N, missing M, stale S, extra E` (and `, refused R` when some keys have a
 * refusal stub), then up to `--list` keys of each kind with why; exit code 1 when anything is
 * out of sync. Refused keys are not out of sync: their stub is what the tool promises.
 */
export async function verifyCommand(flags: ConfigFlags, opts: VerifyFlags): Promise<number> {
  const ctx = await openContext(
    flags,
    opts.repair ? ['source-redis', 'elasticsearch', 'queue-redis'] : ['source-redis', 'elasticsearch'],
  );
  const { config } = ctx;
  try {
    const report = await verify(
      { sink: ctx.sink, source: ctx.source, router: ctx.router },
      {
        databases: config.redis.databases,
        patterns: config.redis.patterns,
        prefix: config.queue.prefix,
        scanCount: config.producer.scanCount,
        settleMs: opts.settleMs,
        progress: process.stderr.isTTY ? createProgress('verify', ctx.logger) : undefined,
      },
    );
    process.stdout.write(`${formatReport(report)}\n`);
    const limit = opts.list;
    const lists = [
      ['missing', report.missing],
      ['stale', report.stale],
      ['extra', report.extra],
      ['refused', report.refused],
    ] as const;
    for (const [kind, keys] of lists) {
      for (const key of keys.slice(0, limit)) {
        const why = report.why[key];
        process.stdout.write(`${kind}\t${displayKey(key)}${why ? `\t${why.replace(/\s+/g, ' ')}` : ''}\n`);
      }
    }
    if (opts.repair && !inSync(report)) {
      const enqueued = await repair(ctx, report);
      process.stdout.write(`repair: enqueued ${enqueued} keys; a worker indexes their current state\n`);
    }
    return inSync(report) ? 0 : 1;
  } finally {
    await ctx.close();
  }
}

/**
 * Enqueues every key the report names, through the same versioned path as live changes:
 * the worker re-reads each key and writes (or deletes) its document under a fresh version,
 * so a repair racing live traffic can never write something stale.
 */
async function repair(ctx: AppContext, report: VerifyReport): Promise<number> {
  const { config } = ctx;
  const log = ctx.logger.child({ command: 'verify', repair: true });
  const sink = createChangeSink(config, ctx.queues(), ctx.queueRedis, log, ctx.router);
  const byDb = reportKeys(report, config.redis.databases);
  const progress = process.stderr.isTTY ? createProgress('repair', log) : undefined;
  progress?.setTotal([...byDb.values()].reduce((n, keys) => n + keys.length, 0));
  let enqueued = 0;
  const batch = config.producer.snapshotBatchKeys;
  for (const [db, keys] of byDb) {
    for (let i = 0; i < keys.length; i += batch) {
      const slice = keys.slice(i, i + batch);
      enqueued += await sink.enqueueKeys(db, slice, 'repair');
      progress?.increment(slice.length);
    }
  }
  progress?.stop();
  log.info({ enqueued }, 'repair enqueued');
  return enqueued;
}
