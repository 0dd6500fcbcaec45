import { Redis } from 'ioredis';
import { ClusterSource } from '../../shared/platform/redis-cluster';
import { startRedisCluster, type RedisClusterHandle } from '../support/redis-cluster';

let cluster: RedisClusterHandle;
let source: ClusterSource;

beforeAll(async () => {
  cluster = await startRedisCluster({ masters: 3, replicasPerMaster: 1 });
  source = new ClusterSource([cluster.urls[0]!, ...cluster.urls.slice(1)], 'cluster-source-test');
});

afterAll(async () => {
  await source?.close();
  await cluster?.stop();
});

describe('ClusterSource.masters', () => {
  it('keeps the connection to a master demoted by a failover open for whoever still holds it', async () => {
    const before = await source.masters(0);
    const { master, replica } = await cluster.failover();
    const demoted = before.find((n) => n.id.endsWith(`:${master}`));
    expect(demoted).toBeDefined();
    // Listing again while a scan (verify, a reconciliation) still holds the demoted node's
    // client: it must keep answering, not fail with "Connection is closed."
    const after = await source.masters(0);
    expect(after.map((n) => n.id)).toContainEqual(expect.stringMatching(new RegExp(`:${replica}$`)));
    expect(after.map((n) => n.id)).not.toContainEqual(expect.stringMatching(new RegExp(`:${master}$`)));
    await expect(demoted!.client.dbsize()).resolves.toEqual(expect.any(Number));
    // Promoted back, the node is listed again, on the same client.
    const node = new Redis(cluster.nodes.find((n) => n.port === master)!.url);
    try {
      await node.cluster('FAILOVER');
    } finally {
      node.disconnect();
    }
    const deadline = Date.now() + 30_000;
    while ((await cluster.role(master)) !== 'master') {
      if (Date.now() > deadline) throw new Error(`${master} not promoted back within 30 s`);
      await new Promise((r) => setTimeout(r, 100));
    }
    await cluster.waitHealthy();
    const again = await source.masters(0);
    expect(again.find((n) => n.id === demoted!.id)?.client).toBe(demoted!.client);
  }, 90_000);
});
