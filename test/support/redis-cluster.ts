import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { getFreePort } from './ports';
import { startRedis, type RedisServerHandle } from './redis-server';

const run = promisify(execFile);

export interface ClusterNode {
  port: number;
  url: string;
  server: RedisServerHandle;
}

export interface RedisClusterHandle {
  nodes: ClusterNode[];
  /** redis:// URLs of every node, as `redis.cluster.nodes` takes them. */
  urls: string[];
  /** The node serving `port` now as a master or a replica. */
  role(port: number): Promise<'master' | 'replica'>;
  /** Ports of the current masters, from CLUSTER NODES on a live node. */
  masterPorts(): Promise<number[]>;
  /** Moves `slots` slots and their keys from one master to another (`redis-cli --cluster reshard`). */
  reshard(fromPort: number, toPort: number, slots: number): Promise<void>;
  /** Waits until every live node reports cluster_state:ok and agrees on the masters. */
  waitHealthy(timeoutMs?: number): Promise<void>;
  /** A manual CLUSTER FAILOVER of a replica; resolves once it is master and the cluster healthy. */
  failover(): Promise<{ master: number; replica: number }>;
  stop(): Promise<void>;
}

export interface StartClusterOptions {
  masters?: number;
  replicasPerMaster?: number;
  /** cluster-node-timeout: how soon a dead master is failed over. */
  nodeTimeoutMs?: number;
}

/**
 * A real Redis Cluster from Debian's redis-server: `--cluster-enabled yes` nodes without
 * persistence, joined by `redis-cli --cluster create`, keyspace notifications on every node.
 */
export async function startRedisCluster(opts: StartClusterOptions = {}): Promise<RedisClusterHandle> {
  const masters = opts.masters ?? 3;
  const replicas = opts.replicasPerMaster ?? 1;
  const dir = mkdtempSync(join(tmpdir(), 'res-cluster-'));
  const nodes: ClusterNode[] = [];
  const stopAll = async (): Promise<void> => {
    await Promise.all(nodes.map((n) => n.server.stop()));
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    for (let i = 0; i < masters * (1 + replicas); i++) {
      const server = await startRedis({
        notifyKeyspaceEvents: 'KEA',
        args: [
          '--cluster-enabled',
          'yes',
          '--cluster-config-file',
          join(dir, `nodes-${i}.conf`),
          '--cluster-port',
          String(await getFreePort()),
          '--cluster-node-timeout',
          String(opts.nodeTimeoutMs ?? 2000),
          '--dir',
          dir,
        ],
      });
      nodes.push({ port: server.port, url: server.url, server });
    }
    await run('redis-cli', [
      '--cluster',
      'create',
      ...nodes.map((n) => `127.0.0.1:${n.port}`),
      '--cluster-replicas',
      String(replicas),
      '--cluster-yes',
    ]);
  } catch (err) {
    await stopAll();
    throw err;
  }

  const withNode = async <T>(port: number, fn: (r: Redis) => Promise<T>): Promise<T> => {
    const r = new Redis(port, '127.0.0.1', { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    r.on('error', () => undefined);
    try {
      await r.connect();
      return await fn(r);
    } finally {
      r.disconnect();
    }
  };
  const liveNodes = async (): Promise<number[]> => {
    const alive = await Promise.all(
      nodes.map((n) =>
        withNode(n.port, (r) => r.ping()).then(
          () => n.port,
          () => undefined,
        ),
      ),
    );
    return alive.filter((p): p is number => p !== undefined);
  };
  const mastersSeenBy = async (port: number): Promise<number[]> => {
    const text = (await withNode(port, (r) => r.cluster('NODES'))) as string;
    return text
      .split('\n')
      .map((l) => l.split(' '))
      .filter((f) => f.length > 8 && f[2]!.split(',').includes('master') && !f[2]!.split(',').includes('fail'))
      .map((f) => Number(f[1]!.split('@')[0]!.split(':')[1]))
      .sort((a, b) => a - b);
  };

  const handle: RedisClusterHandle = {
    nodes,
    urls: nodes.map((n) => n.url),
    async role(port) {
      const info = await withNode(port, (r) => r.info('replication'));
      return info.includes('role:master') ? 'master' : 'replica';
    },
    async masterPorts() {
      const [first] = await liveNodes();
      if (first === undefined) throw new Error('no cluster node answers');
      return mastersSeenBy(first);
    },
    async reshard(fromPort, toPort, slots) {
      const idOf = async (port: number): Promise<string> => {
        const text = await withNode(port, (r) => r.cluster('MYID'));
        return text.trim();
      };
      await run(
        'redis-cli',
        [
          '--cluster',
          'reshard',
          `127.0.0.1:${fromPort}`,
          '--cluster-from',
          await idOf(fromPort),
          '--cluster-to',
          await idOf(toPort),
          '--cluster-slots',
          String(slots),
          '--cluster-pipeline',
          '100',
          '--cluster-yes',
        ],
        { maxBuffer: 64 * 1024 * 1024 },
      );
    },
    async waitHealthy(timeoutMs = 30000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        try {
          const live = await liveNodes();
          const states = await Promise.all(live.map((p) => withNode(p, (r) => r.cluster('INFO'))));
          const views = await Promise.all(live.map((p) => mastersSeenBy(p)));
          const agreed = views.every((v) => JSON.stringify(v) === JSON.stringify(views[0]));
          if (states.every((s) => s.includes('cluster_state:ok')) && agreed && views[0]!.length === masters) return;
        } catch {
          // a node mid-failover; look again
        }
        if (Date.now() > deadline) throw new Error(`redis cluster not healthy within ${timeoutMs} ms`);
        await new Promise((r) => setTimeout(r, 200));
      }
    },
    async failover() {
      const roles = await Promise.all(nodes.map(async (n) => ({ port: n.port, role: await handle.role(n.port) })));
      const replica = roles.find((r) => r.role === 'replica')?.port;
      if (replica === undefined) throw new Error('the cluster has no replica to promote');
      // A manual failover waits for the replica to reach its master's offset, and gives up
      // silently if it cannot: a replica still in its first sync (a cluster just created) would not be promoted.
      let info = await withNode(replica, (r) => r.info('replication'));
      for (const until = Date.now() + 30000; !/^master_link_status:up/m.test(info);) {
        if (Date.now() > until) throw new Error(`replica ${replica}'s link to its master is not up within 30000 ms`);
        await new Promise((r) => setTimeout(r, 100));
        info = await withNode(replica, (r) => r.info('replication'));
      }
      const master = Number(/^master_port:(\d+)/m.exec(info)?.[1]);
      await withNode(replica, (r) => r.cluster('FAILOVER'));
      const deadline = Date.now() + 30000;
      while ((await handle.role(replica)) !== 'master') {
        if (Date.now() > deadline) throw new Error(`replica ${replica} not promoted within 30000 ms`);
        await new Promise((r) => setTimeout(r, 100));
      }
      await handle.waitHealthy();
      return { master, replica };
    },
    stop: stopAll,
  };
  await handle.waitHealthy();
  return handle;
}
