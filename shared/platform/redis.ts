import type { ConnectionOptions } from 'node:tls';
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import type { ClusterConfig, NonEmpty, SentinelConfig } from './config/schema';
import { nonEmpty } from './config/schema';
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
  | { kind: 'cluster'; nodes: NonEmpty<string> };

/** The validated schema guarantees exactly one of the three. */
export function endpointOf(section: EndpointConfig): RedisEndpoint {
  if (section.cluster) return { kind: 'cluster', nodes: nonEmpty(section.cluster.nodes, 'cluster.nodes') };
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

/**
 * RESP2, as before ioredis 6 (whose default is RESP3): flush detection relies on it. A RESP3
 * connection that redirects client-side-caching invalidations to itself gets them as `invalidate`
 * push replies, not as messages on `__redis__:invalidate` (notifications/subscription.ts), so
 * FLUSHDB and FLUSHALL would go unseen. BullMQ's duplicates of our connections inherit it.
 */
const RESP_PROTOCOL = 2;

function baseOptions(opts: RedisConnectOptions): RedisOptions {
  return {
    protocol: RESP_PROTOCOL,
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
        new Redis({
          ...sentinelOptions(target),
          ...baseOptions(opts),
          ...(opts.tls && target.tls ? { sentinelTLS: opts.tls } : {}),
        });
  const label =
    typeof target === 'string' ? redactUrl(target) : describeEndpoint({ kind: 'sentinel', sentinel: target });
  logErrors(redis, label, opts);
  if (typeof target !== 'string') adoptSentinelClient(redis, target, label, opts);
  return redis;
}

/**
 * What a Sentinel-followed connection needs beyond ioredis's own handling, also on the
 * duplicates BullMQ makes of it (a worker's blocking connection, a queue's events reader):
 * those read and write the same master, so they must follow it as closely.
 */
function adoptSentinelClient(redis: Redis, target: SentinelConfig, label: string, opts: RedisConnectOptions): void {
  followSentinelMaster(redis, target, label, opts);
  const duplicate = redis.duplicate.bind(redis);
  redis.duplicate = (override?: Partial<RedisOptions>): Redis => {
    const copy = duplicate(override);
    const name = `${opts.name}:copy`;
    logErrors(copy, label, { ...opts, name });
    adoptSentinelClient(copy, target, label, { ...opts, name });
    // BullMQ closes the duplicates it owns with QUIT alone, which leaves the failover
    // detector's sentinel connections open (they reconnect every minute, keeping the process
    // alive); disconnect() closes them. Right after the reply, as closeRedis does: on a socket
    // already closed, ioredis arms a two-second timer that delays the exit.
    const quit = copy.quit.bind(copy);
    copy.quit = async () => {
      try {
        return await quit();
      } finally {
        copy.disconnect();
      }
    };
    return copy;
  };
}

/** How often a Sentinel-followed connection compares its server with the master the sentinels name. */
const MASTER_CHECK_MS = 1000;
/** Connections checking within this long of each other share one SENTINEL MASTER reply. */
const MASTER_VIEW_TTL_MS = 500;
/** A sentinel slower than this to answer is skipped for the next one. */
const SENTINEL_PROBE_TIMEOUT_MS = 2000;

/** The master as a sentinel knows it: its run_id and how long ago it read the master's INFO. */
interface MasterView {
  runId: string;
  infoAgeMs: number;
}

/**
 * One connection to one of the sentinels (the next one after a failure) asking SENTINEL
 * MASTER, shared by every connection of the process that follows the same group.
 */
class SentinelProbe {
  refs = 0;
  private client: Redis | undefined;
  private next = 0;
  private readonly sentinels: NonEmpty<string>;
  private cached: { at: number; view: Promise<MasterView | undefined> } | undefined;

  constructor(
    private readonly sentinel: SentinelConfig,
    private readonly tls: ConnectionOptions | undefined,
    private readonly log: Logger,
  ) {
    this.sentinels = nonEmpty(sentinel.sentinels, 'redis.sentinel.sentinels');
  }

  /** The sentinel asked now; `next` stays below the list's length, the fallback only satisfies the type. */
  private current(): string {
    return this.sentinels[this.next] ?? this.sentinels[0];
  }

  master(): Promise<MasterView | undefined> {
    const now = Date.now();
    if (!this.cached || now - this.cached.at >= MASTER_VIEW_TTL_MS) this.cached = { at: now, view: this.ask() };
    return this.cached.view;
  }

  close(): void {
    this.client?.disconnect();
    this.client = undefined;
  }

  private async ask(): Promise<MasterView | undefined> {
    const client = (this.client ??= this.open());
    try {
      const reply = (await client.call('SENTINEL', 'MASTER', this.sentinel.name)) as string[];
      const fields = new Map<string, string>();
      for (let i = 0; i + 1 < reply.length; i += 2) {
        const [name, value] = [reply[i], reply[i + 1]];
        if (name !== undefined && value !== undefined) fields.set(name, value);
      }
      const runId = fields.get('runid') ?? '';
      const infoAgeMs = Number(fields.get('info-refresh'));
      // Right after a failover a sentinel has not read the new master's INFO yet (no run_id): nothing to compare.
      return runId && Number.isFinite(infoAgeMs) ? { runId, infoAgeMs } : undefined;
    } catch (err) {
      // This sentinel is down or slow: the check is only a safety net, so it waits for the next round and another sentinel.
      this.log.debug({ err, sentinel: this.current() }, 'sentinel did not say which server is the master');
      this.close();
      this.next = (this.next + 1) % this.sentinels.length;
      return undefined;
    }
  }

  private open(): Redis {
    const s = this.sentinel;
    const client = new Redis({
      ...parseHostPort(this.current()),
      connectionName: 'redis-es-sync:sentinel-probe',
      protocol: RESP_PROTOCOL,
      // A failed sentinel is replaced by the next one in ask(), not retried.
      retryStrategy: () => null,
      maxRetriesPerRequest: 0,
      enableReadyCheck: false,
      connectTimeout: SENTINEL_PROBE_TIMEOUT_MS,
      commandTimeout: SENTINEL_PROBE_TIMEOUT_MS,
      ...(s.sentinelPassword ? { password: s.sentinelPassword } : {}),
      ...(s.tls ? { tls: this.tls ?? {} } : {}),
    });
    client.on('error', () => undefined);
    return client;
  }
}

const probes = new Map<string, SentinelProbe>();

function acquireProbe(
  s: SentinelConfig,
  tls: ConnectionOptions | undefined,
  log: Logger,
): { probe: SentinelProbe; release: () => void } {
  const key = `${s.name}@${s.sentinels.join(',')}`;
  let probe = probes.get(key);
  if (!probe) {
    probe = new SentinelProbe(s, tls, log);
    probes.set(key, probe);
  }
  probe.refs++;
  const p = probe;
  let released = false;
  return {
    probe: p,
    release: () => {
      if (released) return;
      released = true;
      // Its socket would keep the process alive after every client is closed.
      if (--p.refs === 0 && probes.get(key) === p) {
        probes.delete(key);
        p.close();
      }
    },
  };
}

/**
 * ioredis's failover detector moves a connection to the new master when a sentinel publishes
 * +switch-master, but it can miss that message: its sentinel connections reconnect only a
 * minute after they drop, they subscribe only after the connection to the master is up (a
 * failover in between goes unseen), and an old master that the sentinels cannot demote keeps
 * answering as a master, so the ready check passes on it. A connection left there reads stale
 * data, and a notification subscription there hears none of the writes that now go to the new
 * master, with no disconnect to tell the producer that it has a gap to reconcile. So every
 * Sentinel-followed connection also compares the run_id of its server (read when it becomes
 * ready) with the master's run_id as the sentinels report it, and on a difference reconnects;
 * ioredis then resolves the master again, and a subscriber sees a disconnect, hence a gap that
 * is reconciled.
 *
 * run_id rather than host:port: a sentinel may announce a hostname where the socket shows an
 * address, and that would never match. The sentinel's run_id is compared only when it read
 * the master's INFO after this connection became ready: after a restart of the master (new
 * run_id, same address) the sentinel reports the old run_id until its next INFO, up to ten
 * seconds, and acting on that would reconnect for nothing.
 */
function followSentinelMaster(redis: Redis, s: SentinelConfig, label: string, opts: RedisConnectOptions): void {
  const log = (opts.logger ?? defaultLogger()).child({ redis: label, connection: opts.name });
  const { probe, release } = acquireProbe(s, opts.tls, log);
  let epoch = 0;
  let server: { runId: string; readyAt: number } | undefined;
  let checking = false;
  redis.on('ready', () => {
    const mine = ++epoch;
    server = undefined;
    const readyAt = Date.now();
    // Sent from the ready event, before any caller's SUBSCRIBE: a subscribed connection may not run INFO.
    redis.info('server').then(
      (text) => {
        const runId = /^run_id:(\w+)/m.exec(text)?.[1];
        if (mine === epoch && runId) server = { runId, readyAt };
      },
      (err: unknown) =>
        log.debug(
          { err },
          'could not read the run_id of the server: this connection is not checked against the sentinels',
        ),
    );
  });
  redis.on('close', () => {
    epoch++;
    server = undefined;
  });
  const check = async (): Promise<void> => {
    const mine = server;
    if (!mine || redis.status !== 'ready') return;
    const view = await probe.master();
    if (!view || mine !== server || view.runId === mine.runId) return;
    if (view.infoAgeMs >= Date.now() - mine.readyAt) return;
    log.warn(
      { server: mine.runId, master: view.runId },
      'connected to a server that is not the master the sentinels name: reconnecting to the master',
    );
    server = undefined;
    redis.disconnect(true);
  };
  const timer = setInterval(() => {
    if (checking) return;
    checking = true;
    check()
      .catch((err: unknown) => log.debug({ err }, 'master check failed'))
      .finally(() => {
        checking = false;
      });
  }, MASTER_CHECK_MS);
  timer.unref();
  redis.once('end', () => {
    clearInterval(timer);
    release();
  });
}

/**
 * A Redis Cluster client: routes each command by its key's slot and follows MOVED and ASK
 * redirections, refreshing the slot map on failovers and resharding.
 */
export function connectCluster(nodes: NonEmpty<string>, opts: RedisConnectOptions): Cluster {
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
      if (err.message.includes('NOPERM'))
        log.error({ err }, 'the Redis user lacks a permission this tool needs (docs/security.md, Redis ACL)');
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
  /**
   * The Cluster hash slots whose keys this view of the source answers for, or undefined for
   * every key: the whole source answers for all of them, a capture shard for its master's.
   */
  slotsServed(): Promise<ReadonlySet<number> | undefined>;
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

  async slotsServed(): Promise<undefined> {
    return undefined;
  }

  subscriber(_nodeId: string, name: string, db?: number): Redis {
    return connectRedis(this.target, { name, db, logger: this.logger, tls: this.tls });
  }

  async close(): Promise<void> {
    await closeRedis(...this.clients.values());
    this.clients.clear();
  }
}
