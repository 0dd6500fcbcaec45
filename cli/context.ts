import { createSink } from '../shared/sink/create-sink';
import type { Sink } from '../shared/sink/port';
import { createLogger, redactUrl, routeConsoleToLogger, type Logger } from '../shared/platform/logger';
import { ensureIndices } from '../shared/sink/indices';
import { KeyRouter } from '../shared/core/mapping/router';
import { canarySettings } from '../shared/core/canary';
import { SyncQueues } from '../shared/core/queue';
import {
  closeRedis,
  connectEndpoint,
  describeEndpoint,
  endpointOf,
  type RedisClient,
  type SourceRedis,
} from '../shared/platform/redis';
import { createSource } from '../shared/core/source';
import { redisTlsOptions } from '../shared/platform/tls';
import { captureConfigIssues, ConfigSchema, type SyncConfig } from '../producers/capture/registry';
import { loadConfig, type ConfigFlags, type LoadedConfig } from '../shared/platform/config/load';
import { nonEmpty } from '../shared/platform/config/schema';
import { checkDependencies, redisProbe, type DependencyProbe, type SourceOf } from '../shared/platform/dependencies';
import { DependencyError, type DependencyName } from '../shared/platform/errors';
import { stopAll } from '../shared/platform/lifecycle';

/** Everything a command needs, built once from the validated configuration. */
export interface AppContext {
  config: SyncConfig;
  logger: Logger;
  router: KeyRouter;
  /** The search engine, behind the sink port: one per process. */
  sink: Sink;
  source: SourceRedis;
  /** Commands on the queue Redis; opened on first use. */
  readonly queueRedis: RedisClient;
  /** For BullMQ's blocking calls (workers); opened on first use. */
  bullConnection(): RedisClient;
  /** The queue's partitions (and former layouts); opened on first use. */
  queues(): SyncQueues;
  /** Checks for the dependencies named (all when none are), for messages that name them. */
  probes(needs?: readonly DependencyName[]): DependencyProbe[];
  /** Where a configuration value came from (`env REDIS_URL`), when it was given. */
  sourceOf: SourceOf;
  /** Where the search cache lives: `search.cache.url`, or the queue Redis. */
  searchCacheRedis(): RedisClient;
  close(): Promise<void>;
}

/**
 * A context whose dependencies answered: the one-shot commands' way in. Each dependency named
 * must connect and answer within `dependencies.timeoutMs`, or the command stops with a message
 * naming it (the context is closed first, so nothing keeps the process alive).
 */
export async function openContext(
  flags: ConfigFlags,
  needs: readonly DependencyName[],
  logger?: Logger,
): Promise<AppContext> {
  const ctx = createContext(flags, logger);
  try {
    await checkDependencies(ctx.probes(needs), ctx.config.dependencies.timeoutMs);
  } catch (err) {
    // The message only: a driver error's own fields can hold what it sent (AUTH and its password).
    ctx.logger.debug({ err }, 'dependency check failed');
    await ctx.close();
    throw err;
  }
  return ctx;
}

/** The CLI's context: also routes the libraries' console output through its logger. */
export function createContext(flags: ConfigFlags, logger?: Logger): AppContext {
  const ctx = buildContext(loadConfig(ConfigSchema, flags, process.env, [captureConfigIssues]), logger);
  routeConsoleToLogger(ctx.logger);
  return ctx;
}

export function buildContext(
  { config, baseDir, file, sources }: LoadedConfig<SyncConfig>,
  logger?: Logger,
): AppContext {
  const log = logger ?? createLogger(config.logLevel);
  const router = KeyRouter.fromConfig(config.mapping, baseDir, config.redis.databases, canarySettings(config));
  const sourceEndpoint = endpointOf(config.redis);
  const queueEndpoint = endpointOf(config.queue);
  log.debug(
    {
      configFile: file,
      redis: describeEndpoint(sourceEndpoint),
      queueRedis: describeEndpoint(queueEndpoint),
      elasticsearch: redactUrl(config.elasticsearch.url),
    },
    'configuration loaded',
  );
  const sourceTls = redisTlsOptions(config.redis.tls, 'redis.tls');
  const queueTls = redisTlsOptions(config.queue.tls, 'queue.tls');
  const source = createSource(sourceEndpoint, 'source', log, sourceTls);
  // Opened on first use: verify never needs it, and a down queue Redis should not warn there.
  let queueRedis: RedisClient | undefined;
  const queueClient = (): RedisClient =>
    (queueRedis ??= connectEndpoint(queueEndpoint, { name: 'queue', logger: log, tls: queueTls }));
  let bull: RedisClient | undefined;
  let queue: SyncQueues | undefined;
  let queueConnection: RedisClient | undefined;
  let cacheRedis: RedisClient | undefined;
  const sourceOf: SourceOf = (field) => sources?.get(field);
  const sink = createSink({
    connection: config.elasticsearch,
    engine: config.sink.engine,
    ...(config.sink.aws ? { aws: config.sink.aws } : {}),
    logger: log,
    sourceOf,
    detectTimeoutMs: config.dependencies.timeoutMs,
  });
  const allProbes: DependencyProbe[] = [
    redisProbe(
      'source-redis',
      () => source.db(nonEmpty(config.redis.databases, 'redis.databases')[0]),
      describeEndpoint(sourceEndpoint),
      endpointField('redis', config.redis),
      sourceOf,
    ),
    redisProbe(
      'queue-redis',
      queueClient,
      describeEndpoint(queueEndpoint),
      endpointField('queue', config.queue),
      sourceOf,
    ),
    sinkProbe(sink, redactUrl(config.elasticsearch.url)),
  ];
  let closing: Promise<void> | undefined;
  return {
    config,
    logger: log,
    router,
    sink,
    source,
    get queueRedis() {
      return queueClient();
    },
    bullConnection() {
      bull ??= connectEndpoint(queueEndpoint, { name: 'bullmq', forBullmq: true, logger: log, tls: queueTls });
      return bull;
    },
    queues() {
      if (!queue) {
        queueConnection = connectEndpoint(queueEndpoint, {
          name: 'queue-producer',
          forBullmq: true,
          logger: log,
          tls: queueTls,
        });
        queue = SyncQueues.create(config, queueConnection, log);
      }
      return queue;
    },
    searchCacheRedis() {
      const url = config.search.cache.url;
      if (!url) return queueClient();
      // A cache that is slow or gone must not hold searches: one reconnect, then the search goes to Elasticsearch.
      cacheRedis ??= connectEndpoint(
        { kind: 'standalone', url },
        { name: 'search-cache', failFast: true, logger: log },
      );
      return cacheRedis;
    },
    probes(needs) {
      return needs ? allProbes.filter((p) => needs.includes(p.name)) : allProbes;
    },
    sourceOf,
    close() {
      // Memoized: a signal during a failed start's rollback must not close twice.
      closing ??= stopAll(
        [
          // BullMQ's close waits for its connection; with the queue Redis down that is forever.
          { name: 'queue', stop: async () => queue?.close() },
          { name: 'source redis', stop: () => source.close() },
          { name: 'queue redis', stop: () => closeRedis(queueRedis, bull, queueConnection, cacheRedis) },
          { name: 'search engine client', stop: () => sink.close() },
        ],
        { logger: log, stepTimeoutMs: CLOSE_STEP_MS },
      );
      return closing;
    },
  };
}

/** Which field holds the endpoint of a `redis`/`queue` section, for hints. */
function endpointField(name: 'redis' | 'queue', section: { cluster?: unknown; sentinel?: unknown }): string {
  return `${name}.${section.cluster ? 'cluster' : section.sentinel ? 'sentinel' : 'url'}`;
}

/** A closing step that takes longer is abandoned: its connections are disconnected by the next. */
const CLOSE_STEP_MS = 3000;

/**
 * Creates the missing indices. A refusal (403: the credentials may not create indices) is
 * reported like a failed start-up check: status, type, reason and where the credentials came from.
 */
export async function prepareIndices(ctx: AppContext): Promise<void> {
  try {
    await ensureIndices(ctx.sink, ctx.router, ctx.config.mapping, ctx.logger);
  } catch (err) {
    throw ctx.sink.dependencyError(err, {
      timeoutMs: ctx.config.elasticsearch.requestTimeoutMs,
      tried: 'creating the missing indices',
    });
  }
}

/**
 * The search engine answers its health call within `timeoutMs` (the first call also detects
 * the engine). A failure is the sink's operator-facing error; a 401 names the credentials'
 * origin, never their value.
 */
function sinkProbe(sink: Sink, endpoint: string): DependencyProbe {
  return {
    name: 'elasticsearch',
    endpoint,
    async check(timeoutMs) {
      try {
        await sink.health(timeoutMs);
      } catch (err) {
        throw err instanceof DependencyError ? err : sink.dependencyError(err, { timeoutMs });
      }
    },
  };
}
