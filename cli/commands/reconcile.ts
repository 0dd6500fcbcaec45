import { createChangeSink } from '../../producers/change-sink';
import { reconcile } from '../../producers/reconcile';
import { reconcileSettings } from '../../producers/reconcile-runner';
import { createProgress } from '../progress';
import { waitUntilDrained } from '../../shared/core/queue';
import type { ConfigFlags } from '../../shared/platform/config/load';
import { MassDeletionRefusedError } from '../../shared/platform/errors';
import { openContext, prepareIndices } from '../context';

/**
 * One reconciliation from its own process, beside a running producer: every key and every
 * document whose key is gone is enqueued through the versioned path. The repair for changes
 * no capture saw (in outbox mode: writes without an entry, expirations, evictions).
 */
export async function reconcileCommand(
  flags: ConfigFlags,
  opts: { wait?: boolean; allowMassDeletion?: boolean },
): Promise<void> {
  const ctx = await openContext(flags, ['source-redis', 'queue-redis', 'elasticsearch']);
  const { config } = ctx;
  const log = ctx.logger.child({ command: 'reconcile' });
  try {
    await prepareIndices(ctx);
    const queue = ctx.queues();
    const sink = createChangeSink(config, queue, ctx.queueRedis, log, ctx.router);
    const started = Date.now();
    const result = await reconcile(
      { searchSink: ctx.sink, router: ctx.router, source: ctx.source, queueRedis: ctx.queueRedis, sink, logger: log },
      // The operator's explicit go-ahead past producer.deletionGuard, for this one pass.
      { ...reconcileSettings(config), ...(opts.allowMassDeletion ? { guard: undefined } : {}) },
    );
    if (result.refused.length > 0) throw new MassDeletionRefusedError(result.refused);
    log.info(
      { enqueued: result.enqueued, vanished: result.vanished, ms: Date.now() - started },
      'reconciliation enqueued',
    );
    if (opts.wait) {
      const drain = createProgress('reconcile: queue drain (jobs)', log);
      try {
        await waitUntilDrained(queue, { progress: drain, logger: log });
      } finally {
        drain.stop();
      }
      log.info({ ms: Date.now() - started }, 'queue drained: reconciliation indexed');
    }
  } finally {
    await ctx.close();
  }
}
