import { ClusterSource } from '../../shared/platform/redis-cluster';
import type { SourceNode } from '../../shared/platform/redis';
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

/** masters(0) listed again until `done` holds for its node ids (each listing asks some node's CLUSTER NODES). */
async function listedUntil(done: (ids: string[]) => boolean): Promise<SourceNode[]> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const listed = await source.masters(0);
    if (done(listed.map((n) => n.id))) return listed;
    if (Date.now() > deadline) throw new Error(`masters still ${JSON.stringify(listed.map((n) => n.id))}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('ClusterSource.masters', () => {
  it('keeps the connection to a master demoted by a failover open for whoever still holds it', async () => {
    const before = await source.masters(0);
    const { master, replica } = await cluster.failover();
    const demoted = before.find((n) => n.id.endsWith(`:${master}`));
    expect(demoted).toBeDefined();
    // Listing again while a scan (verify, a reconciliation) still holds the demoted node's
    // client: it must keep answering, not fail with "Connection is closed."
    // (A node's CLUSTER NODES can lag the failover a moment: listed until every view has it.)
    const after = await listedUntil((ids) => !ids.some((id) => id.endsWith(`:${master}`)));
    expect(after.map((n) => n.id)).toContainEqual(expect.stringMatching(new RegExp(`:${replica}$`)));
    await expect(demoted!.client.dbsize()).resolves.toEqual(expect.any(Number));
  }, 90_000);
});
