import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { startRedis, type RedisServerHandle } from './redis-server';

export interface SentinelGroupHandle {
  /** The master group name the sentinel monitors. */
  name: string;
  /** `host:port` of the sentinel, as `redis.sentinel.sentinels` takes it. */
  sentinelAddr: string;
  servers: RedisServerHandle[];
  /** Port of the master the sentinel announces now. */
  masterPort(): Promise<number>;
  /** SENTINEL FAILOVER, then waits until the sentinel announces another master. */
  failover(timeoutMs?: number): Promise<number>;
  /**
   * Drops every pub/sub connection to the sentinel: ioredis's failover detectors are among
   * them, and they come back only after a minute, so a failover now goes unannounced to them.
   */
  silenceFailoverDetectors(): Promise<void>;
  stop(): Promise<void>;
}

export interface SentinelGroupOptions {
  name?: string;
  /**
   * The first master refuses SLAVEOF, so after a failover the sentinel cannot demote it and it
   * stays a writable master, as an old master does when the sentinels cannot reach it but
   * clients can (a partition).
   */
  undemotableMaster?: boolean;
  /** The data servers' notify-keyspace-events; 'KEA' when omitted, '' for none. */
  notifyKeyspaceEvents?: string;
}

async function withClient<T>(port: number, fn: (r: Redis) => Promise<T>): Promise<T> {
  const r = new Redis(port, '127.0.0.1', { maxRetriesPerRequest: 1 });
  r.on('error', () => undefined);
  try {
    return await fn(r);
  } finally {
    r.disconnect();
  }
}

async function poll(what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * A master, a replica and one sentinel (Debian's redis-server in `--sentinel` mode), with
 * keyspace notifications on both data servers unless told otherwise; resolves once the sentinel knows the replica,
 * so a failover can be asked for.
 */
export async function startSentinelGroup(opts: SentinelGroupOptions = {}): Promise<SentinelGroupHandle> {
  const name = opts.name ?? 'res-master';
  const notify = opts.notifyKeyspaceEvents ?? 'KEA';
  const notifyKeyspaceEvents = notify === '' ? undefined : notify;
  const dir = mkdtempSync(join(tmpdir(), 'res-sentinel-'));
  const servers: RedisServerHandle[] = [];
  const stop = async (): Promise<void> => {
    await Promise.all(servers.map((s) => s.stop()));
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    // --dir: a full sync writes an RDB file even with --save ''; keep it out of the working tree.
    // Sentinel demotes a master with SLAVEOF (in a MULTI, with the CLIENT KILLs that would drop our connections).
    const undemotable = opts.undemotableMaster ? ['--rename-command', 'SLAVEOF', '""'] : [];
    const master = await startRedis({ notifyKeyspaceEvents, args: ['--dir', dir, ...undemotable] });
    servers.push(master);
    const replica = await startRedis({
      notifyKeyspaceEvents,
      args: ['--replicaof', '127.0.0.1', String(master.port), '--dir', dir, '--dbfilename', 'replica.rdb'],
    });
    servers.push(replica);
    await poll(
      'the replica to sync',
      () => withClient(replica.port, async (r) => (await r.info('replication')).includes('master_link_status:up')),
      20000,
    );
    const conf = join(dir, 'sentinel.conf');
    writeFileSync(
      conf,
      [
        `sentinel monitor ${name} 127.0.0.1 ${master.port} 1`,
        `sentinel down-after-milliseconds ${name} 1000`,
        `sentinel failover-timeout ${name} 10000`,
        '',
      ].join('\n'),
    );
    const sentinel = await startRedis({ configFile: conf, args: ['--sentinel', '--dir', dir] });
    servers.push(sentinel);
    await poll(
      'the sentinel to discover the replica',
      () =>
        withClient(sentinel.port, async (r) => ((await r.call('SENTINEL', 'REPLICAS', name)) as unknown[]).length > 0),
      20000,
    );
    const masterPort = (): Promise<number> =>
      withClient(sentinel.port, async (r) =>
        Number(((await r.call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', name)) as string[])[1]),
      );
    return {
      name,
      sentinelAddr: `127.0.0.1:${sentinel.port}`,
      servers,
      masterPort,
      async failover(timeoutMs = 30000) {
        const before = await masterPort();
        await withClient(sentinel.port, (r) => r.call('SENTINEL', 'FAILOVER', name));
        let after = before;
        await poll(
          'the sentinel to announce the new master',
          async () => (after = await masterPort()) !== before,
          timeoutMs,
        );
        await poll(
          'the new master to take writes',
          () => withClient(after, async (r) => (await r.info('replication')).includes('role:master')),
          timeoutMs,
        );
        return after;
      },
      async silenceFailoverDetectors() {
        await withClient(sentinel.port, (r) => r.call('CLIENT', 'KILL', 'TYPE', 'pubsub'));
      },
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
