import { createProducer, type CaptureProducer } from '../producers/create-producer';
import { leaseKeys, RedisLease } from '../producers/lease';
import { fencedQueue, LeasedProducer } from '../producers/leased-producer';
import { startIndexWorker, type IndexWorker } from '../workers/index-worker';
import type { HttpSurface } from '../shared/http/server';
import { elasticsearchCheck, queueNotPausedCheck, redisCheck, type ReadinessCheck } from '../shared/http/readiness';
import type { Logger } from '../shared/logger';
import { SearchCache } from '../shared/search/cache';
import { SearchService } from '../shared/search/service';
import { prepareIndices, type AppContext } from './context';

export interface ServiceParts {
  producer: boolean;
  worker: boolean;
}

export interface RunningService {
  producer?: CaptureProducer;
  worker?: IndexWorker;
  http?: HttpSurface;
  /** Producer first, so the last captured changes are queued before the worker drains. */
  stop(): Promise<void>;
}

/** Starts the long-running parts on a context: producer, worker, or both (`run`). */
export async function startService(ctx: AppContext, parts: ServiceParts): Promise<RunningService> {
  const log = ctx.logger.child({ command: parts.producer && parts.worker ? 'run' : parts.producer ? 'producer' : 'worker' });
  // Served first, so /healthz answers and /readyz tells what is missing while start-up waits on it.
  const http = ctx.config.http.port > 0 ? await startContextHttp(ctx, ctx.config.http.port, { indexes: parts.worker }) : undefined;
  try {
    return await startParts(ctx, parts, log, http);
  } catch (err) {
    await http?.close();
    throw err;
  }
}

async function startParts(ctx: AppContext, parts: ServiceParts, log: Logger, http: HttpSurface | undefined): Promise<RunningService> {
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
        createProducer({ config: ctx.config, source: ctx.source, queueRedis: ctx.queueRedis, queue: fenced, fence: lease, es: ctx.es, router: ctx.router, logger: log }),
      ttlMs: settings.leaseTtlMs,
      renewMs: settings.leaseRenewMs,
      logger: log,
    });
    await producer.start();
  }
  return {
    producer,
    worker,
    http,
    async stop() {
      http?.drain();
      await producer?.stop();
      await worker?.close();
      await http?.close();
      await ctx.close();
    },
  };
}

/**
 * The dependencies a running process needs: source Redis, queue Redis, Elasticsearch; and,
 * for a process that indexes, a queue that is not paused. Not for the dashboard, which must
 * stay reachable to resume it.
 */
export function readinessChecks(ctx: AppContext, opts: { indexes?: boolean } = {}): ReadinessCheck[] {
  return [
    redisCheck('source-redis', () => ctx.source.db(ctx.config.redis.databases[0])),
    redisCheck('queue-redis', () => ctx.queueRedis),
    elasticsearchCheck(ctx.es),
    ...(opts.indexes ? [queueNotPausedCheck(ctx.queue())] : []),
  ];
}

/**
 * The HTTP surface (dashboard, metrics, probes) for this context's queue and dependencies.
 * fastify and bull-board are loaded only when it is served, so plain workers start quickly.
 */
export async function startContextHttp(ctx: AppContext, port: number, opts: { indexes?: boolean } = {}): Promise<HttpSurface> {
  const { startHttpSurface } = await import('../shared/http/server');
  return startHttpSurface({
    http: { ...ctx.config.http, port },
    queue: ctx.queue(),
    readiness: readinessChecks(ctx, opts),
    logger: ctx.logger,
    search: searchService(ctx),
  });
}

/** The search API's service on this context's connections. */
export function searchService(ctx: AppContext): SearchService {
  const { search } = ctx.config;
  return new SearchService({
    es: ctx.es,
    source: ctx.source,
    queueRedis: ctx.queueRedis,
    cache: new SearchCache(ctx.searchCacheRedis(), ctx.config.queue.prefix, { ttlMs: search.cacheTtlMs, ...search.cache }, ctx.logger.child({ component: 'search-cache' })),
    prefix: ctx.config.queue.prefix,
    router: ctx.router,
    databases: ctx.config.redis.databases,
    settings: ctx.config.search,
    logger: ctx.logger,
  });
}
