import type { Redis } from 'ioredis';
import type { AppConfig } from '../shared/config/schema';
import { createEsClient, type EsClient } from '../shared/elasticsearch';
import { createLogger, redactUrl, type Logger } from '../shared/logger';
import { ensureIndices } from '../shared/mapping/indices';
import { KeyRouter } from '../shared/mapping/router';
import { createQueue, type SyncQueue } from '../shared/queue';
import { closeRedis, connectRedis, RedisDbPool } from '../shared/redis';
import { redisTlsOptions } from '../shared/tls';
import { loadConfig, type ConfigFlags, type LoadedConfig } from '../shared/config/load';

/** Everything a command needs, built once from the validated configuration. */
export interface AppContext {
  config: AppConfig;
  logger: Logger;
  router: KeyRouter;
  es: EsClient;
  source: RedisDbPool;
  queueRedis: Redis;
  /** For BullMQ's blocking calls (workers); opened on first use. */
  bullConnection(): Redis;
  queue(): SyncQueue;
  close(): Promise<void>;
}

export function createContext(flags: ConfigFlags, logger?: Logger): AppContext {
  return buildContext(loadConfig(flags), logger);
}

export function buildContext({ config, baseDir, file }: LoadedConfig, logger?: Logger): AppContext {
  const log = logger ?? createLogger(config.logLevel);
  const router = KeyRouter.fromConfig(config.mapping, baseDir, config.redis.databases);
  log.debug(
    { configFile: file, redis: redactUrl(config.redis.url), queueRedis: redactUrl(config.queue.url), elasticsearch: redactUrl(config.elasticsearch.url) },
    'configuration loaded',
  );
  const es = createEsClient(config.elasticsearch);
  const sourceTls = redisTlsOptions(config.redis.tls, 'redis.tls');
  const queueTls = redisTlsOptions(config.queue.tls, 'queue.tls');
  const source = new RedisDbPool(config.redis.url, 'source', log, sourceTls);
  const queueRedis = connectRedis(config.queue.url, { name: 'queue', logger: log, tls: queueTls });
  let bull: Redis | undefined;
  let queue: SyncQueue | undefined;
  let queueConnection: Redis | undefined;
  return {
    config,
    logger: log,
    router,
    es,
    source,
    queueRedis,
    bullConnection() {
      bull ??= connectRedis(config.queue.url, { name: 'bullmq', forBullmq: true, logger: log, tls: queueTls });
      return bull;
    },
    queue() {
      if (!queue) {
        queueConnection = connectRedis(config.queue.url, { name: 'queue-producer', forBullmq: true, logger: log, tls: queueTls });
        queue = createQueue(config, queueConnection);
      }
      return queue;
    },
    async close() {
      await queue?.close();
      await source.close();
      await closeRedis(queueRedis, bull, queueConnection);
      await es.close();
    },
  };
}

export async function prepareIndices(ctx: AppContext): Promise<void> {
  await ensureIndices(ctx.es, ctx.router, ctx.config.mapping, ctx.logger);
}
