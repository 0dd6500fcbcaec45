import type { ConnectionOptions } from 'node:tls';
import { Redis, type RedisOptions } from 'ioredis';
import type { Logger } from './logger';
import { redactUrl } from './logger';

export interface RedisConnectOptions {
  /** Shown in CLIENT LIST, so an operator can tell the tool's connections apart. */
  name: string;
  db?: number;
  /** BullMQ's blocking connections need unlimited retries per request. */
  forBullmq?: boolean;
  logger?: Logger;
  /** TLS options (CA, client certificate); `rediss://` without them uses the system CAs. */
  tls?: ConnectionOptions;
}

export function connectRedis(url: string, opts: RedisConnectOptions): Redis {
  const options: RedisOptions = {
    connectionName: `redis-es-sync:${opts.name}`,
    enableReadyCheck: true,
    retryStrategy: (times) => Math.min(100 * 2 ** Math.min(times, 8), 5000),
    ...(opts.db !== undefined ? { db: opts.db } : {}),
    ...(opts.forBullmq ? { maxRetriesPerRequest: null } : {}),
    ...(opts.tls ? { tls: opts.tls } : {}),
  };
  const redis = new Redis(url, options);
  if (opts.logger) {
    const log = opts.logger.child({ redis: redactUrl(url), connection: opts.name });
    let lastError = '';
    redis.on('error', (err: Error) => {
      // ioredis repeats the same error on every retry; log it once per change.
      if (err.message !== lastError) {
        if (/NOPERM/.test(err.message)) log.error({ err: err.message }, 'the Redis user lacks a permission this tool needs (README: Security, Redis ACL)');
        else log.warn({ err: err.message }, 'redis connection error');
      }
      lastError = err.message;
    });
    redis.on('ready', () => {
      if (lastError) log.info('redis connection ready again');
      lastError = '';
    });
  }
  return redis;
}

/** Two URLs that reach the same server and database: then the queue's keys live among the data. */
export function sameRedis(a: string, b: string): boolean {
  const norm = (u: string): string => {
    const p = new URL(u);
    return `${p.hostname}:${p.port || '6379'}/${p.pathname.replace(/^\//, '') || '0'}`;
  };
  return norm(a) === norm(b);
}

export async function closeRedis(...clients: (Redis | undefined)[]): Promise<void> {
  await Promise.all(
    clients.map(async (c) => {
      if (!c || c.status === 'end') return;
      try {
        await c.quit();
      } catch {
        c.disconnect();
      }
    }),
  );
}

/** One connection per Redis database, opened on first use (ioredis binds a connection to a db). */
export class RedisDbPool {
  private readonly clients = new Map<number, Redis>();

  constructor(
    private readonly url: string,
    private readonly name: string,
    private readonly logger?: Logger,
    /** For every connection of the pool, and for the dedicated ones a producer opens to the same server. */
    readonly tls?: ConnectionOptions,
  ) {}

  db(db: number): Redis {
    let client = this.clients.get(db);
    if (!client) {
      client = connectRedis(this.url, { name: `${this.name}:db${db}`, db, logger: this.logger, tls: this.tls });
      this.clients.set(db, client);
    }
    return client;
  }

  async close(): Promise<void> {
    await closeRedis(...this.clients.values());
    this.clients.clear();
  }
}
