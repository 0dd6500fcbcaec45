import type { ConnectionOptions } from 'node:tls';
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import type { ClusterConfig, SentinelConfig } from './config/schema';
import type { Logger } from './logger';
import { defaultLogger, redactUrl } from './logger';
import { backoffDelay, REDIS_RECONNECT } from './retry';

/** A standalone or Sentinel-followed server (Redis), or a Redis Cluster (Cluster). */
export type RedisClient = Redis | Cluster;

/** How a configuration section (`redis`, `queue`) reaches its Redis. */
export interface EndpointConfig {
  url?: string;
  cluster?: ClusterConfig;
  sentinel?: SentinelConfig;
}

export type RedisEndpoint =
  | { kind: 'standalone'; url: string }
  | { kind: 'sentinel'; sentinel: SentinelConfig }
  | { kind: 'cluster'; nodes: readonly string[] };

/** The validated schema guarantees exactly one of the three. */
export function endpointOf(section: EndpointConfig): RedisEndpoint {
  if (section.cluster) return { kind: 'cluster', nodes: section.cluster.nodes };
  if (section.sentinel) return { kind: 'sentinel', sentinel: section.sentinel };
  if (section.url) return { kind: 'standalone', url: section.url };
  throw new Error('no Redis endpoint configured (url, cluster or sentinel)');
}

/** For logs: passwords masked. */
export function describeEndpoint(e: RedisEndpoint): string {
  switch (e.kind) {
    case 'standalone':
      return redactUrl(e.url);
    case 'cluster':
      return `cluster ${e.nodes.map(redactUrl).join(',')}`;
    case 'sentinel':
      return `sentinel ${e.sentinel.name}@${e.sentinel.sentinels.join(',')}`;
  }
}

export interface RedisConnectOptions {
  /** Shown in CLIENT LIST, so an operator can tell the tool's connections apart. */
  name: string;
  db?: number;
  /** BullMQ's blocking connections need unlimited retries per request. */
  forBullmq?: boolean;
  /** Fail a command after one reconnect attempt instead of queueing it (for a node that may be gone for good). */
  failFast?: boolean;
  logger?: Logger;
  /** TLS options (CA, client certificate); `rediss://` without them uses the system CAs. */
  tls?: ConnectionOptions;
}

function baseOptions(opts: RedisConnectOptions): RedisOptions {
  return {
    connectionName: `redis-es-sync:${opts.name}`,
    enableReadyCheck: true,
    retryStrategy: (times) => backoffDelay(REDIS_RECONNECT, times),
    ...(opts.db !== undefined ? { db: opts.db } : {}),
    ...(opts.forBullmq ? { maxRetriesPerRequest: null } : {}),
    ...(opts.failFast ? { maxRetriesPerRequest: 1 } : {}),
    ...(opts.tls ? { tls: opts.tls } : {}),
  };
}

function sentinelOptions(s: SentinelConfig): RedisOptions {
  return {
    sentinels: s.sentinels.map(parseHostPort),
    name: s.name,
    // Reconnect as soon as the sentinels announce a new master, rather than when the old one
    // drops us; the ready check then refuses any server that is not the master.
    failoverDetector: true,
    ...(s.username ? { username: s.username } : {}),
    ...(s.password ? { password: s.password } : {}),
    ...(s.sentinelPassword ? { sentinelPassword: s.sentinelPassword } : {}),
    ...(s.tls ? { tls: {}, enableTLSForSentinelMode: true } : {}),
  };
}

function parseHostPort(hp: string): { host: string; port: number } {
  const i = hp.lastIndexOf(':');
  return { host: hp.slice(0, i), port: Number(hp.slice(i + 1)) };
}

/** Credentials and TLS carried by a redis:// or rediss:// URL, for connections built from host and port. */
function urlAuth(url: string): Pick<RedisOptions, 'username' | 'password' | 'tls'> {
  const u = new URL(url);
  return {
    ...(u.username ? { username: decodeURIComponent(u.username) } : {}),
    ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
    ...(u.protocol === 'rediss:' ? { tls: {} } : {}),
  };
}

/** A standalone server by URL, or the current master of a Sentinel group (followed across failovers). */
export function connectRedis(target: string | SentinelConfig, opts: RedisConnectOptions): Redis {
  const redis =
    typeof target === 'string'
      ? new Redis(target, baseOptions(opts))
      : // Configured TLS options win over the bare `tls: {}` a TLS sentinel group implies.
        new Redis({ ...sentinelOptions(target), ...baseOptions(opts), ...(opts.tls && target.tls ? { sentinelTLS: opts.tls } : {}) });
  const label = typeof target === 'string' ? redactUrl(target) : describeEndpoint({ kind: 'sentinel', sentinel: target });
  logErrors(redis, label, opts);
  return redis;
}

/**
 * A Redis Cluster client: routes each command by its key's slot and follows MOVED and ASK
 * redirections, refreshing the slot map on failovers and resharding.
 */
export function connectCluster(nodes: readonly string[], opts: RedisConnectOptions): Cluster {
  const { retryStrategy: _perNode, db: _db, ...redisOptions } = baseOptions(opts);
  const options: ClusterOptions = {
    // Configured TLS options (in redisOptions) win over the bare `tls: {}` of a rediss:// seed.
    redisOptions: { ...urlAuth(nodes[0]), ...redisOptions },
    clusterRetryStrategy: (times) => backoffDelay(REDIS_RECONNECT, times),
    slotsRefreshInterval: 5000,
  };
  const cluster = new Cluster(
    nodes.map((n) => {
      const u = new URL(n);
      return { host: u.hostname, port: Number(u.port || 6379) };
    }),
    options,
  );
  logErrors(cluster, describeEndpoint({ kind: 'cluster', nodes }), opts);
  return cluster;
}

export function connectEndpoint(e: RedisEndpoint, opts: RedisConnectOptions): RedisClient {
  switch (e.kind) {
    case 'standalone':
      return connectRedis(e.url, opts);
    case 'sentinel':
      return connectRedis(e.sentinel, opts);
    case 'cluster':
      return connectCluster(e.nodes, opts);
  }
}

/** While a connection keeps failing the same way, its error is logged again this often. */
const REPEAT_ERROR_LOG_MS = 30000;

/**
 * Every client gets an 'error' listener: without one ioredis prints the error itself, with
 * the failed command's arguments (`AUTH <password>`), outside the redacting logger.
 */
function logErrors(redis: RedisClient, label: string, opts: RedisConnectOptions): void {
  const log = (opts.logger ?? defaultLogger()).child({ redis: label, connection: opts.name });
  let lastError = '';
  let loggedAt = 0;
  let since = 0;
  redis.on('error', (err: Error) => {
    // ioredis repeats the same error on every retry: log it when it changes, and again now
    // and then while it lasts, so a long outage is not one line lost in the past.
    const now = Date.now();
    if (err.message !== lastError) {
      since = now;
      loggedAt = now;
      if (/NOPERM/.test(err.message)) log.error({ err }, 'the Redis user lacks a permission this tool needs (README: Security, Redis ACL)');
      else log.warn({ err }, 'redis connection error');
    } else if (now - loggedAt >= REPEAT_ERROR_LOG_MS) {
      loggedAt = now;
      log.warn({ err, forMs: now - since }, 'redis still unreachable; retrying');
    }
    lastError = err.message;
  });
  redis.on('ready', () => {
    if (lastError) log.info({ downMs: Date.now() - since }, 'redis connection ready again');
    lastError = '';
  });
}

/** A server that takes longer to answer QUIT is disconnected anyway. */
const QUIT_TIMEOUT_MS = 2000;

export async function closeRedis(...clients: (RedisClient | undefined)[]): Promise<void> {
  await Promise.all(
    clients.map(async (c) => {
      if (!c || c.status === 'end') return;
      // QUIT on a client that is not ready would wait behind its reconnect attempts (forever,
      // with the server down): such a client has nothing to flush, so it is just disconnected.
      if (c.status === 'ready') {
        let timer: NodeJS.Timeout | undefined;
        try {
          await Promise.race([c.quit(), new Promise((resolve) => (timer = setTimeout(resolve, QUIT_TIMEOUT_MS)))]);
        } catch {
          // disconnect() below ends it anyway
        } finally {
          clearTimeout(timer);
        }
      }
      // QUIT leaves a Sentinel client's failover detector (its own sentinel connections) open.
      c.disconnect();
    }),
  );
}

/** Keys in these databases over every master (DBSIZE): the total a progress bar counts to. */
export async function countKeys(source: SourceRedis, databases: readonly number[]): Promise<number> {
  let total = 0;
  for (const db of databases) for (const node of await source.masters(db)) total += await node.client.dbsize();
  return total;
}

/** A server that holds part (or all) of a database's keys: where SCAN, DBSIZE and keyspace notifications run. */
export interface SourceNode {
  /** `host:port` of a cluster master; empty for a standalone or Sentinel source. */
  id: string;
  client: Redis;
}

/**
 * The source Redis, whatever its topology: key commands go through `db(n)`, which routes
 * them; node-local work (SCAN, notifications) runs on every one of `masters(n)`.
 */
export interface SourceRedis {
  readonly isCluster: boolean;
  /** Key commands on database `db`. */
  db(db: number): RedisClient;
  /** The masters holding database `db`'s keys, listed afresh. */
  masters(db: number): Promise<SourceNode[]>;
  /**
   * Changes whenever masters, their slots or a slot migration in progress change: a SCAN over
   * every master is complete only if this held still from before the first to after the last.
   */
  topology(): Promise<string>;
  /** A new connection of the caller's own to one master (by `SourceNode.id`), for pub/sub or blocking reads. */
  subscriber(nodeId: string, name: string, db?: number): Redis;
  close(): Promise<void>;
}

/** One connection per Redis database, opened on first use (ioredis binds a connection to a db). */
export class RedisDbPool implements SourceRedis {
  readonly isCluster = false;
  private readonly clients = new Map<number, Redis>();

  constructor(
    private readonly target: string | SentinelConfig,
    private readonly name: string,
    private readonly logger?: Logger,
    /** For every connection of the pool, and for the dedicated ones a producer opens to the same server. */
    readonly tls?: ConnectionOptions,
  ) {}

  db(db: number): Redis {
    let client = this.clients.get(db);
    if (!client) {
      client = connectRedis(this.target, { name: `${this.name}:db${db}`, db, logger: this.logger, tls: this.tls });
      this.clients.set(db, client);
    }
    return client;
  }

  async masters(db: number): Promise<SourceNode[]> {
    return [{ id: '', client: this.db(db) }];
  }

  async topology(): Promise<string> {
    return '';
  }

  subscriber(_nodeId: string, name: string, db?: number): Redis {
    return connectRedis(this.target, { name, db, logger: this.logger, tls: this.tls });
  }

  async close(): Promise<void> {
    await closeRedis(...this.clients.values());
    this.clients.clear();
  }
}
