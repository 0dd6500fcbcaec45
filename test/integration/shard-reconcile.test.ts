import { createChangeSink } from '../../producers/change-sink';
import { reconcile, type ReconcileDeps } from '../../producers/reconcile';
import { listShards, shardSource } from '../../producers/shards';
import { ShardedProducer } from '../../producers/sharded-producer';
import { keySlot } from '../../shared/core/key-slot';
import { slotsOfNode } from '../../shared/platform/redis-cluster';
import { unfinishedJobs } from '../../shared/core/queue';
import type { SourceRedis } from '../../shared/platform/redis';
import { useClusterSource } from '../support/cluster-source';
import { getDoc, startPipeline, waitFor, type TestPipeline } from '../support/pipeline';

const KEYS = 300;
/** Masters the in-process sharded producer captures now. */
function shardsOf(p: TestPipeline | undefined): number {
  const producer = p?.service.producer;
  return producer instanceof ShardedProducer ? producer.shards.length : 0;
}

const SETTINGS = { databases: [0], patterns: ['*'], scanCount: 100, batchKeys: 100, prefix: 'redis-es-sync' };

/**
 * A capture shard's reconciliation (what its hand-over runs) decides the deletions of its own
 * master's keys only: a key deleted behind capture's back on shard A's master is left alone by
 * shard B's reconciliation and removed by A's.
 */
describe("a shard's reconciliation on a 3-master Cluster source", () => {
  let pipeline: TestPipeline | undefined;
  const source = useClusterSource(() => pipeline);

  it("reconciles only that shard: B leaves A's deleted key alone, A removes it", async () => {
    const input = source().input('shard-reconcile', { reconcileIntervalMs: 0, deletionGuard: { maxShare: 1 } });
    // A worker only: no capture runs, so the deletions below are seen by reconciliation alone.
    pipeline = await startPipeline(input, { producer: false, worker: true });
    const { ctx } = pipeline;
    const sink = createChangeSink(ctx.config, ctx.queues(), ctx.queueRedis, ctx.logger, ctx.router);
    const depsOf = (source: SourceRedis): ReconcileDeps => ({
      searchSink: ctx.sink,
      router: ctx.router,
      source,
      queueRedis: ctx.queueRedis,
      sink,
      logger: ctx.logger,
    });
    const drained = (): Promise<number> =>
      waitFor(
        'the queue drained',
        () => unfinishedJobs(ctx.queues()),
        (n) => n === 0,
        60_000,
      );
    const docOf = async (key: string): Promise<Record<string, unknown> | undefined> => {
      const route = ctx.router.route(0, key);
      if (!route) throw new Error(`${key} is not routed`);
      return getDoc(ctx, route.index, route.id);
    };

    const keys = Array.from({ length: KEYS }, (_, i) => `doc:${i}`);
    for (const k of keys) await ctx.source.db(0).set(k, JSON.stringify({ k }));
    const whole = await reconcile(depsOf(ctx.source), { ...SETTINGS, guard: undefined });
    expect(whole.enqueued).toBe(KEYS);
    await drained();
    expect(await ctx.sink.count(ctx.router.indices()[0]!)).toBe(KEYS);

    const [a, b] = await listShards(ctx.source);
    if (!a || !b) throw new Error('fewer than two masters');
    const [shardA, shardB] = [shardSource(ctx.source, a.id), shardSource(ctx.source, b.id)];
    const [slotsA, slotsB] = [await shardA.slotsServed(), await shardB.slotsServed()];
    if (!slotsA || !slotsB) throw new Error('a shard answers for every slot');
    const onA = keys.filter((k) => slotsA.has(keySlot(k)));
    const onB = keys.filter((k) => slotsB.has(keySlot(k)));
    // What each master holds, by its own count: the slots are the master's.
    expect(onA.length).toBe(await a.node.client.dbsize());
    expect(onB.length).toBe(await b.node.client.dbsize());
    const [goneA, goneB] = [onA[0]!, onB[0]!];
    for (const k of [goneA, goneB]) await ctx.source.db(0).del(k);

    const byB = await reconcile(depsOf(shardB), { ...SETTINGS, guard: undefined });
    // B's own keys again, and one deletion: its own.
    expect(byB).toMatchObject({ enqueued: onB.length - 1, vanished: 1, aborted: false });
    await drained();
    expect(await docOf(goneB)).toBeUndefined();
    expect(await docOf(goneA)).toBeDefined();

    const byA = await reconcile(depsOf(shardA), { ...SETTINGS, guard: undefined });
    expect(byA).toMatchObject({ enqueued: onA.length - 1, vanished: 1, aborted: false });
    await drained();
    expect(await docOf(goneA)).toBeUndefined();
    await pipeline.stop();
    pipeline = undefined;
  }, 180_000);

  it('reconciles a shard again when its master takes slots: a key deleted unseen before its slot moved is removed', async () => {
    const { cluster } = source();
    const input = source().input('shard-reconcile-moved', {
      shardedCapture: true,
      leaseTtlMs: 3000,
      leaseRenewMs: 300,
      reconcileIntervalMs: 0,
      deletionGuard: { maxShare: 1 },
    });
    pipeline = await startPipeline(input);
    const { ctx } = pipeline;
    const [a, b] = await listShards(ctx.source);
    if (!a || !b) throw new Error('fewer than two masters');
    const slot = Math.min(...(await slotsOfNode(a.node.client)));
    let key = '';
    for (let i = 0; keySlot(key) !== slot || key === ''; i++) key = `moved:${i}`;
    const route = ctx.router.route(0, key)!;
    await ctx.source.db(0).set(key, '{"here":true}');
    await waitFor(
      'the key indexed',
      () => getDoc(ctx, route.index, route.id),
      (d) => d !== undefined,
      30_000,
    );
    // The tenures' first reconciliations are over: none of them can be what removes the document.
    await waitFor(
      'every master captured',
      async () => shardsOf(pipeline),
      (n) => n === 3,
      30_000,
    );
    await pipeline.service.producer?.idle();

    // Deleted while its master publishes nothing: capture never hears of it.
    const flags = (await a.node.client.config('GET', 'notify-keyspace-events'))[1] ?? 'KEA';
    await a.node.client.config('SET', 'notify-keyspace-events', '');
    await ctx.source.db(0).del(key);
    await a.node.client.config('SET', 'notify-keyspace-events', flags);
    // The slot, empty now, moves to b, as redis-cli --cluster reshard moves a slot.
    await b.node.client.cluster('SETSLOT', slot, 'IMPORTING', a.id);
    await a.node.client.cluster('SETSLOT', slot, 'MIGRATING', b.id);
    await b.node.client.cluster('SETSLOT', slot, 'NODE', b.id);
    await a.node.client.cluster('SETSLOT', slot, 'NODE', b.id);
    await cluster.waitHealthy();

    await waitFor(
      "the document removed by b's reconciliation",
      () => getDoc(ctx, route.index, route.id),
      (d) => d === undefined,
      60_000,
      200,
    );
  }, 180_000);
});
