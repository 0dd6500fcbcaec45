import { rebuild, RebuildError, type KeyWriter } from '../../features/maintenance/rebuild';
import { VersionCounter, versionKey } from '../../shared/core/versions';
import type { ConfigFlags } from '../../shared/platform/config/load';
import { EXIT } from '../../shared/platform/errors';
import { BulkIndexer } from '../../workers/bulk-indexer';
import { openContext, type AppContext } from '../context';
import { createProgress } from '../progress';

export interface RebuildFlags {
  index?: string;
  keep?: boolean;
  /** Milliseconds (parsed by the program from `--grace 90s`). */
  grace?: number;
}

/**
 * Builds the next generation of the indices behind their aliases and swaps them once verify
 * finds it in sync; resumes the rebuild an earlier run left. Exit 1 (with the reason) when the
 * new generation is out of sync or the rebuild cannot start; the aliases are then untouched.
 */
export async function rebuildCommand(flags: ConfigFlags, opts: RebuildFlags): Promise<number> {
  const ctx = await openContext(flags, ['source-redis', 'queue-redis', 'elasticsearch']);
  const { config } = ctx;
  const log = ctx.logger.child({ command: 'rebuild' });
  try {
    const result = await rebuild(
      {
        sink: ctx.sink,
        source: ctx.source,
        queueRedis: ctx.queueRedis,
        router: ctx.router,
        mapping: config.mapping,
        writer: keyWriter(ctx),
        logger: log,
        progress: createProgress('rebuild', log),
        onPhase: (phase, targets) => {
          process.stderr.write(
            `rebuild: ${phase} (${targets.map((t) => `${t.index}: ${t.from} → ${t.to}`).join(', ')})\n`,
          );
          return Promise.resolve();
        },
      },
      {
        prefix: config.queue.prefix,
        databases: config.redis.databases,
        patterns: config.redis.patterns,
        scanCount: config.producer.scanCount,
        batchKeys: config.rebuild.batchKeys,
        verifySettleMs: config.rebuild.verifySettleMs,
        ...(opts.index !== undefined ? { index: opts.index } : {}),
        keep: opts.keep === true,
        graceMs: opts.grace ?? config.rebuild.graceMs,
      },
    );
    const swapped = result.targets.map((t) => `${t.index} → ${t.to}`).join(', ');
    const deleted = result.deleted.length > 0 ? `; deleted ${result.deleted.join(', ')}` : '';
    process.stdout.write(`rebuild${result.resumed ? ' (resumed)' : ''}: swapped ${swapped}${deleted}\n`);
    return EXIT.ok;
  } catch (err) {
    if (!(err instanceof RebuildError)) throw err;
    log.error({ err }, 'rebuild stopped');
    process.stderr.write(`redis-es-sync: rebuild: ${err.message}\n`);
    return EXIT.failure;
  } finally {
    await ctx.close();
  }
}

/** The worker's versioned write path (versions first, then the read), into the router's indices only. */
export function keyWriter(ctx: AppContext): KeyWriter {
  const counter = new VersionCounter(ctx.queueRedis, versionKey(ctx.config.queue.prefix));
  return (router) => {
    const indexer = new BulkIndexer({
      sink: ctx.sink,
      source: ctx.source,
      counter,
      router,
      settings: ctx.config.worker,
      logger: ctx.logger.child({ component: 'rebuild-writer' }),
    });
    return async (db, keys) => {
      await indexer.index(keys.map((key) => ({ db, key })));
    };
  };
}
