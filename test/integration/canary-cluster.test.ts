import { Redis } from 'ioredis';
import { readFreshness } from '../../shared/core/canary';
import { useClusterSource } from '../support/cluster-source';
import { startPipeline, verifyNow, waitFor, type TestPipeline } from '../support/pipeline';

/**
 * The freshness canary on a 3-master Cluster source: one heartbeat key per master, each stored
 * on that master itself (its hash tag picked from the master's own slots), so every shard's
 * capture is measured; each gets its own measurement, and verify leaves them all out.
 */
describe('freshness canary on a 3-master Redis Cluster source', () => {
  let pipeline: TestPipeline | undefined;
  const source = useClusterSource(() => pipeline);

  it('writes one heartbeat on each master and measures each master as its own shard', async () => {
    const { cluster } = source();
    const input = source().input('canary-cluster', {
      reconcileIntervalMs: 0,
      canary: { intervalMs: 1000, pollMs: 200 },
    });
    pipeline = await startPipeline(input);
    const { ctx } = pipeline;

    const masters = await cluster.masterPorts();
    expect(masters).toHaveLength(3);
    const ids = await Promise.all(
      masters.map(async (port) => {
        const r = new Redis(port, '127.0.0.1');
        try {
          return (await r.cluster('MYID')).trim();
        } finally {
          r.disconnect();
        }
      }),
    );

    // A loose bound: each master's first heartbeat goes through capture, queue, worker and a refresh.
    const records = await waitFor(
      'a measurement for every master',
      () => readFreshness(ctx.queueRedis, ctx.config.queue.prefix),
      (rs) => rs.filter((r) => r.seenWrittenAt !== undefined).length === 3,
      30000,
      200,
    );
    expect(records.map((r) => r.shard).sort()).toEqual([...ids].sort());
    expect(new Set(records.map((r) => r.key)).size).toBe(3);

    // Each master holds exactly one heartbeat key, in a slot it serves (read on the node itself, no redirection).
    for (const port of masters) {
      const r = new Redis(port, '127.0.0.1');
      try {
        const own = await r.keys('redis-es-sync-canary:*');
        expect(own).toHaveLength(1);
        expect(records.map((x) => x.key)).toContain(own[0]);
        expect(await r.get(own[0]!)).toMatch(/^\d+$/);
      } finally {
        r.disconnect();
      }
    }

    // The heartbeats are keys of the source, not the user's data.
    await ctx.source.db(0).set('user:1', 'Ada');
    const report = await waitFor(
      'verify in sync with the one user key',
      () => verifyNow(ctx),
      (v) => v.checked === 1 && v.missing.length === 0 && v.stale.length === 0,
      30000,
    );
    expect(report.extra).toEqual([]);
  });
});
