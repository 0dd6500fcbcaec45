import { NotificationProducer } from '../../producers/producer';
import { onShutdown } from '../../shared/shutdown';
import { startIndexWorker, type IndexWorker } from '../../workers/index-worker';
import { createContext, prepareIndices } from '../context';
import type { ConfigFlags } from '../../shared/config/load';

export interface RunParts {
  producer: boolean;
  worker: boolean;
}

/** The long-running modes: producer, worker, or both in one process (`run`). */
export async function runService(flags: ConfigFlags, parts: RunParts): Promise<void> {
  const ctx = createContext(flags);
  const log = ctx.logger.child({ command: parts.producer && parts.worker ? 'run' : parts.producer ? 'producer' : 'worker' });
  await prepareIndices(ctx);
  let worker: IndexWorker | undefined;
  let producer: NotificationProducer | undefined;
  if (parts.worker) {
    worker = startIndexWorker({
      config: ctx.config,
      es: ctx.es,
      source: ctx.source,
      queueRedis: ctx.queueRedis,
      bullConnection: ctx.bullConnection(),
      router: ctx.router,
      logger: log,
    });
    log.info({ concurrency: ctx.config.worker.concurrency, bulkMaxDocs: ctx.config.worker.bulkMaxDocs }, 'worker started');
  }
  if (parts.producer) {
    producer = new NotificationProducer({
      config: ctx.config,
      source: ctx.source,
      queueRedis: ctx.queueRedis,
      queue: ctx.queue(),
      es: ctx.es,
      router: ctx.router,
      logger: log,
    });
    await producer.start();
  }
  onShutdown(log, async () => {
    // Producer first, so the last captured changes are queued before the worker drains.
    await producer?.stop();
    await worker?.close();
    await ctx.close();
  });
}
