import { captureRunsWithoutLease, captureShardsByMaster, createCapture } from '../producers/capture/registry';
import type { CaptureProducer } from '../producers/capture/types';
import {
  leaseKeys,
  ProducerRegistry,
  producerName,
  producerRegistryKey,
  RedisLease,
  shardLeaseKeys,
} from '../producers/lease';
import { LeasedProducer } from '../producers/leased-producer';
import { ShardedProducer } from '../producers/sharded-producer';
import { generationBumper } from '../features/search/generation';
import { startIndexWorker, type IndexWorker } from '../workers/index-worker';
import type { HttpSurface } from '../features/http/server';
import { elasticsearchCheck, queueNotPausedCheck, redisCheck, type ReadinessCheck } from '../features/http/readiness';
import { SearchCache } from '../features/search/cache';
import { SearchService } from '../features/search/service';
import { waitForDependencies } from '../shared/platform/dependencies';
import { Lifecycle } from '../shared/platform/lifecycle';
import { FailureStore } from '../shared/core/failure-store';
import type { DependencyName } from '../shared/platform/errors';
import { onShutdown } from '../shared/platform/shutdown';
import { nonEmpty } from '../shared/platform/config/schema';
import { prepareIndices, type AppContext } from './context';
import { rebuildProgressSeries } from '../features/maintenance/rebuild/status';

export interface ServiceParts {
  producer: boolean;
  worker: boolean;
}

export interface RunningService {
  producer?: CaptureProducer;
  worker?: IndexWorker;
  http?: HttpSurface;
  /** In reverse order of start, each step bounded; closes the context last. Memoized. */
  stop(): Promise<void>;
}

/** One stop step (drain the producer, finish the bulks) may take this long; then the next runs. */
const STOP_STEP_MS = 15000;
/** Producer and worker stop steps when the queue Redis is down at the start of the stop. */
const STOP_STEP_QUEUE_DOWN_MS = 2000;
/** Closing the connections: each of its own steps is bounded too (cli/context.ts). */
const CLOSE_MS = 10000;
/** The whole stop: below the 30 s the signal handler allows, so the steps' own logs get out. */
const STOP_DEADLINE_MS = 25000;

export interface StartOptions {
  /** Aborted by a signal during start-up: waiting for dependencies gives up. */
  signal?: AbortSignal;
}

/**
 * Starts the long-running parts on a context, in order: HTTP surface (so /readyz tells what is
 * missing while start-up waits), dependencies, indices, worker, producer. If a part fails to
 * start, every part already started is stopped, in reverse, and the context closed: a failed
 * start leaves nothing running. `stop` (memoized) stops in reverse order too: producer first,
 * so the last captured changes are queued before the worker drains.
 */
export async function startService(
  ctx: AppContext,
  parts: ServiceParts,
  opts: StartOptions = {},
): Promise<RunningService> {
  const log = ctx.logger.child({
    command: parts.producer && parts.worker ? 'run' : parts.producer ? 'producer' : 'worker',
  });
  const life = new Lifecycle({ logger: log, stepTimeoutMs: STOP_STEP_MS, deadlineMs: STOP_DEADLINE_MS });
  const running: Omit<RunningService, 'stop'> = {};
  await life.add({ name: 'connections', stop: () => ctx.close(), always: true, stopTimeoutMs: () => CLOSE_MS });
  // Producer and worker drain into the queue Redis (enqueue, ack, the failure store): with it
  // down nothing can drain, so they get a short bound. Nothing is lost by cutting them short:
  // the next leader reconciles, and unacknowledged jobs go to another worker when their lock expires.
  const drainBound = (): number => (ctx.queueRedis.status === 'ready' ? STOP_STEP_MS : STOP_STEP_QUEUE_DOWN_MS);
  try {
    if (ctx.config.http.port > 0) {
      await life.add({
        name: 'http',
        start: async () => {
          running.http = await startContextHttp(ctx, ctx.config.http.port, { indexes: parts.worker });
        },
        stop: async () => running.http?.close(),
      });
    }
    await life.add({
      name: 'dependencies',
      start: () =>
        waitForDependencies(ctx.probes(), {
          timeoutMs: ctx.config.dependencies.timeoutMs,
          logEveryMs: ctx.config.dependencies.waitLogEveryMs,
          logger: log,
          signal: opts.signal,
        }),
      stop: async () => undefined,
    });
    await life.add({ name: 'indices', start: () => prepareIndices(ctx), stop: async () => undefined });
    if (parts.worker) {
      await life.add({
        name: 'worker',
        start: async () => {
          running.worker = startIndexWorker({
            config: ctx.config,
            sink: ctx.sink,
            source: ctx.source,
            queueRedis: ctx.queueRedis,
            bullConnection: ctx.bullConnection(),
            queues: ctx.queues(),
            router: ctx.router,
            logger: log,
            afterWrite: generationBumper(ctx.queueRedis, ctx.config.queue.prefix, ctx.config.search.refreshWindowMs),
          });
          log.info(
            {
              concurrency: ctx.config.worker.concurrency,
              bulkMaxDocs: ctx.config.worker.bulkMaxDocs,
              partitions: ctx.config.worker.partitions ?? 'all',
              of: ctx.config.queue.partitions,
            },
            'worker started',
          );
        },
        stop: async () => running.worker?.close(),
        stopTimeoutMs: drainBound,
      });
    }
    if (parts.producer) {
      const { producer: settings, queue } = ctx.config;
      const capture = (lease: RedisLease, source = ctx.source, logger = log): CaptureProducer =>
        createCapture({
          config: ctx.config,
          source,
          queueRedis: ctx.queueRedis,
          queue: ctx.queues().fenced(() => lease.check()),
          fence: lease,
          searchSink: ctx.sink,
          router: ctx.router,
          logger,
        });
      let producer: CaptureProducer;
      if (settings.shardedCapture && captureShardsByMaster(ctx.config) && ctx.source.isCluster) {
        const name = producerName();
        producer = new ShardedProducer({
          source: ctx.source,
          queueRedis: ctx.queueRedis,
          prefix: queue.prefix,
          registry: new ProducerRegistry(ctx.queueRedis, producerRegistryKey(queue.prefix), name, settings.leaseTtlMs),
          lease: (shard) =>
            new RedisLease(ctx.queueRedis, shardLeaseKeys(queue.prefix, shard), settings.leaseTtlMs, name),
          create: (shard, lease, source) => capture(lease, source, log.child({ shard })),
          ttlMs: settings.leaseTtlMs,
          renewMs: settings.leaseRenewMs,
          logger: log,
        });
      } else if (captureRunsWithoutLease(ctx.config)) {
        // Every producer captures (the outbox: each a consumer of the group, XREADGROUP spreading the
        // entries over them, an entry acknowledged only after its jobs are queued).
        producer = createCapture({
          config: ctx.config,
          source: ctx.source,
          queueRedis: ctx.queueRedis,
          queue: ctx.queues(),
          searchSink: ctx.sink,
          router: ctx.router,
          logger: log,
        });
      } else {
        if (settings.shardedCapture)
          log.info(
            'producer.shardedCapture: the source is not a Redis Cluster, so it is one shard under the producer lease',
          );
        const lease = new RedisLease(ctx.queueRedis, leaseKeys(queue.prefix), settings.leaseTtlMs);
        producer = new LeasedProducer({
          lease,
          create: () => capture(lease),
          ttlMs: settings.leaseTtlMs,
          renewMs: settings.leaseRenewMs,
          logger: log,
        });
      }
      // A start that failed half-way has its own timers running: they are stopped before the rollback.
      await life.add({
        name: 'producer',
        start: async () => {
          running.producer = producer;
          await producer.start().catch(async (err: unknown) => {
            await producer.stop().catch(() => undefined);
            throw err;
          });
        },
        stop: () => producer.stop(),
        stopTimeoutMs: drainBound,
      });
    }
  } catch (err) {
    // Lifecycle.add already stopped what had started (connections included).
    await life.stop();
    throw err;
  }
  return {
    ...running,
    async stop() {
      // Out of the Service at once, before the slow part of the drain.
      running.http?.drain();
      await life.stop();
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
    redisCheck('source-redis', () => ctx.source.db(nonEmpty(ctx.config.redis.databases, 'redis.databases')[0])),
    redisCheck('queue-redis', () => ctx.queueRedis),
    elasticsearchCheck(ctx.sink),
    ...(opts.indexes ? [queueNotPausedCheck(ctx.queues())] : []),
  ];
}

/**
 * The HTTP surface (dashboard, metrics, probes) for this context's queue and dependencies.
 * fastify and bull-board are loaded only when it is served, so plain workers start quickly.
 */
export async function startContextHttp(
  ctx: AppContext,
  port: number,
  opts: { indexes?: boolean } = {},
): Promise<HttpSurface> {
  const [{ startHttpSurface }, { searchRoutes }, { failureRoutes }] = await Promise.all([
    import('../features/http/server'),
    import('../features/search/routes'),
    import('../features/maintenance/failure-routes'),
  ]);
  return startHttpSurface({
    http: { ...ctx.config.http, port },
    queues: ctx.queues(),
    readiness: readinessChecks(ctx, opts),
    logger: ctx.logger,
    routes: [
      searchRoutes(searchService(ctx), ctx.logger),
      failureRoutes(new FailureStore(ctx.queueRedis, ctx.config.queue.prefix)),
    ],
    rebuildProgress: () => rebuildProgressSeries(ctx.queueRedis, ctx.config.queue.prefix),
  });
}

/** The search API's service on this context's connections. */
export function searchService(ctx: AppContext): SearchService {
  const { search } = ctx.config;
  return new SearchService({
    sink: ctx.sink,
    source: ctx.source,
    queueRedis: ctx.queueRedis,
    cache: new SearchCache(
      ctx.searchCacheRedis(),
      ctx.config.queue.prefix,
      { ttlMs: search.cacheTtlMs, ...search.cache },
      ctx.logger.child({ component: 'search-cache' }),
    ),
    prefix: ctx.config.queue.prefix,
    router: ctx.router,
    databases: ctx.config.redis.databases,
    settings: ctx.config.search,
    logger: ctx.logger,
  });
}

/**
 * `dashboard` and `serve`: an HTTP surface alone, run like the other roles. It listens first
 * (so /healthz and /readyz answer), then waits for the dependencies it needs, logging what it
 * waits for; what waiting cannot fix (a wrong password) stops it. SIGTERM stops it at any point.
 */
export async function runSurface(
  ctx: AppContext,
  command: string,
  needs: readonly DependencyName[],
  start: () => Promise<Pick<HttpSurface, 'close'> & { drain?(): void }>,
): Promise<void> {
  const log = ctx.logger.child({ command });
  const life = new Lifecycle({ logger: log, stepTimeoutMs: STOP_STEP_MS, deadlineMs: STOP_DEADLINE_MS });
  const abort = new AbortController();
  let http: (Pick<HttpSurface, 'close'> & { drain?(): void }) | undefined;
  onShutdown(ctx.logger, async () => {
    abort.abort();
    http?.drain?.();
    await life.stop();
  });
  try {
    await life.add({ name: 'connections', stop: () => ctx.close(), always: true });
    await life.add({
      name: 'http',
      start: async () => {
        http = await start();
      },
      stop: async () => http?.close(),
    });
    await life.add({
      name: 'dependencies',
      start: () =>
        waitForDependencies(ctx.probes(needs), {
          timeoutMs: ctx.config.dependencies.timeoutMs,
          logEveryMs: ctx.config.dependencies.waitLogEveryMs,
          logger: log,
          signal: abort.signal,
        }),
      stop: async () => undefined,
    });
  } catch (err) {
    // Stopped by a signal while starting: the shutdown handler reports and exits.
    if (abort.signal.aborted) return;
    throw err;
  }
}
