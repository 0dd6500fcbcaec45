import { createProducer, type CaptureProducer } from '../producers/create-producer';
import { leaseKeys, RedisLease } from '../producers/lease';
import { fencedQueue, LeasedProducer } from '../producers/leased-producer';
import { startIndexWorker, type IndexWorker } from '../workers/index-worker';
import { prepareIndices, type AppContext } from './context';

export interface ServiceParts {
  producer: boolean;
  worker: boolean;
}

export interface RunningService {
  producer?: CaptureProducer;
  worker?: IndexWorker;
  /** Producer first, so the last captured changes are queued before the worker drains. */
  stop(): Promise<void>;
}

/** Starts the long-running parts on a context: producer, worker, or both (`run`). */
export async function startService(ctx: AppContext, parts: ServiceParts): Promise<RunningService> {
  const log = ctx.logger.child({ command: parts.producer && parts.worker ? 'run' : parts.producer ? 'producer' : 'worker' });
  await prepareIndices(ctx);
  let worker: IndexWorker | undefined;
  let producer: CaptureProducer | undefined;
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
    const { producer: settings, queue } = ctx.config;
    const lease = new RedisLease(ctx.queueRedis, leaseKeys(queue.prefix), settings.leaseTtlMs);
    const fenced = fencedQueue(ctx.queue(), () => lease.check());
    producer = new LeasedProducer({
      lease,
      create: () =>
        createProducer({ config: ctx.config, source: ctx.source, queueRedis: ctx.queueRedis, queue: fenced, es: ctx.es, router: ctx.router, logger: log }),
      ttlMs: settings.leaseTtlMs,
      renewMs: settings.leaseRenewMs,
      logger: log,
    });
    await producer.start();
  }
  return {
    producer,
    worker,
    async stop() {
      await producer?.stop();
      await worker?.close();
      await ctx.close();
    },
  };
}
