import type { AppConfig } from '../shared/config/schema';
import { createEsClient, type EsClient } from '../shared/elasticsearch';
import { createLogger, redactUrl, routeConsoleToLogger, type Logger } from '../shared/logger';
import { ensureIndices } from '../shared/mapping/indices';
import { KeyRouter } from '../shared/mapping/router';
import { createQueue, type SyncQueue } from '../shared/queue';
import { closeRedis, connectEndpoint, describeEndpoint, endpointOf, type RedisClient, type SourceRedis } from '../shared/redis';
import { createSource } from '../shared/source';
import { redisTlsOptions } from '../shared/tls';
import { loadConfig, type ConfigFlags, type LoadedConfig } from '../shared/config/load';

/** Everything a command needs, built once from the validated configuration. */
export interface AppContext {
  config: AppConfig;
  logger: Logger;
  router: KeyRouter;
  es: EsClient;
  source: SourceRedis;
  queueRedis: RedisClient;
  /** For BullMQ's blocking calls (workers); opened on first use. */
  bullConnection(): RedisClient;
  queue(): SyncQueue;
  /** Where the search cache lives: `search.cache.url`, or the queue Redis. */
  searchCacheRedis(): RedisClient;
  close(): Promise<void>;
}

/** The CLI's context: also routes the libraries' console output through its logger. */
export function createContext(flags: ConfigFlags, logger?: Logger): AppContext {
  const ctx = buildContext(loadConfig(flags), logger);
  routeConsoleToLogger(ctx.logger);
  return ctx;
}

export function buildContext({ config, baseDir, file }: LoadedConfig, logger?: Logger): AppContext {
  const log = logger ?? createLogger(config.logLevel);
  const router = KeyRouter.fromConfig(config.mapping, baseDir, config.redis.databases);
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
  const es = createEsClient(config.elasticsearch, log);
  const sourceTls = redisTlsOptions(config.redis.tls, 'redis.tls');
  const queueTls = redisTlsOptions(config.queue.tls, 'queue.tls');
  const source = createSource(sourceEndpoint, 'source', log, sourceTls);
  const queueRedis = connectEndpoint(queueEndpoint, { name: 'queue', logger: log, tls: queueTls });
  let bull: RedisClient | undefined;
  let queue: SyncQueue | undefined;
  let queueConnection: RedisClient | undefined;
  let cacheRedis: RedisClient | undefined;
  return {
    config,
    logger: log,
    router,
    es,
    source,
    queueRedis,
    bullConnection() {
      bull ??= connectEndpoint(queueEndpoint, { name: 'bullmq', forBullmq: true, logger: log, tls: queueTls });
      return bull;
    },
    queue() {
      if (!queue) {
        queueConnection = connectEndpoint(queueEndpoint, { name: 'queue-producer', forBullmq: true, logger: log, tls: queueTls });
        queue = createQueue(config, queueConnection, log);
      }
      return queue;
    },
    searchCacheRedis() {
      const url = config.search.cache.url;
      if (!url) return queueRedis;
      // A cache that is slow or gone must not hold searches: one reconnect, then the search goes to Elasticsearch.
      cacheRedis ??= connectEndpoint({ kind: 'standalone', url }, { name: 'search-cache', failFast: true, logger: log });
      return cacheRedis;
    },
    async close() {
      await queue?.close();
      await source.close();
      await closeRedis(queueRedis, bull, queueConnection, cacheRedis);
      await es.close();
    },
  };
}

export async function prepareIndices(ctx: AppContext): Promise<void> {
  await ensureIndices(ctx.es, ctx.router, ctx.config.mapping, ctx.logger);
}
