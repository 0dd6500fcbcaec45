import { createChangeSink } from '../../producers/change-sink';
import { snapshot } from '../../producers/snapshot';
import { createProgress } from '../progress';
import { waitUntilDrained } from '../../shared/core/queue';
import type { ConfigFlags } from '../../shared/platform/config/load';
import { openContext, prepareIndices } from '../context';

export interface SnapshotFlags {
  restart?: boolean;
  wait?: boolean;
  /** SCAN MATCH patterns instead of redis.patterns (resync of a subset). */
  patterns?: string[];
  src?: 'snapshot' | 'resync';
}

/** Enqueues every key once (resuming an interrupted run unless --restart); --wait until indexed. */
export async function snapshotCommand(flags: ConfigFlags, opts: SnapshotFlags): Promise<void> {
  const ctx = await openContext(flags, ['source-redis', 'queue-redis', 'elasticsearch']);
  const { config } = ctx;
  const src = opts.src ?? 'snapshot';
  const log = ctx.logger.child({ command: src });
  try {
    await prepareIndices(ctx);
    const queue = ctx.queues();
    const sink = createChangeSink(config, queue, ctx.queueRedis, log, ctx.router);
    const progress = createProgress(src, log);
    const started = Date.now();
    const result = await snapshot(
      { source: ctx.source, queueRedis: ctx.queueRedis, sink, logger: log },
      {
        databases: config.redis.databases,
        patterns: opts.patterns ?? config.redis.patterns,
        scanCount: config.producer.scanCount,
        batchKeys: config.producer.snapshotBatchKeys,
        prefix: config.queue.prefix,
        resume: !opts.restart,
        src,
        progress,
      },
    );
    progress.stop();
    log.info({ keys: result.keys, jobs: result.jobs, ms: Date.now() - started }, `${src} enqueued`);
    if (opts.wait) {
      const drain = createProgress(`${src}: queue drain (jobs)`, log);
      try {
        await waitUntilDrained(queue, { progress: drain, logger: log });
      } finally {
        drain.stop();
      }
      log.info({ ms: Date.now() - started }, 'queue drained: snapshot indexed');
    }
  } finally {
    await ctx.close();
  }
}
