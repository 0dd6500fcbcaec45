import { Cluster, Redis } from 'ioredis';
import type { LeasedProducer } from '../../producers/leased-producer';
import type { CaptureHost } from '../../producers/capture/host';
import type { NotificationMode } from '../../producers/capture/notifications/mode';
import type { AppContext } from '../../cli/context';
import type { ConfigInput } from '../../producers/capture/registry';
import { esUrl, uniqueIndex } from '../support/elasticsearch';
import {
  startPipeline,
  startServers,
  testConfigInput,
  waitFor,
  type TestPipeline,
  type TestServers,
} from '../support/pipeline';
import { startRedis, type RedisServerHandle } from '../support/redis-server';
import { startRedisCluster, type RedisClusterHandle } from '../support/redis-cluster';

/**
 * Keyspace notifications publish nothing for a flush; the masters' flush announcements
 * (client tracking) must trigger the reconciliation that deletes the flushed documents. The
 * scheduled reconciliation is 10 minutes away and no subscription drops, so only the
 * announcement can explain documents going within seconds.
 */
const RECONCILE_MS = 10 * 60 * 1000;
const WITHIN_MS = 5000;

function docCount(ctx: AppContext, index: string): Promise<number> {
  return ctx.sink.count(index);
}

async function docIds(ctx: AppContext, index: string): Promise<string[]> {
  const ids: string[] = [];
  for await (const page of ctx.sink.scan(index)) ids.push(...page.map((d) => d.id));
  return ids.sort();
}

function notificationProducer(pipeline: TestPipeline): CaptureHost<NotificationMode> {
  return (pipeline.service.producer as LeasedProducer).current as CaptureHost<NotificationMode>;
}

describe('FLUSHDB and FLUSHALL are detected within seconds', () => {
  describe('on a standalone source', () => {
    let servers: TestServers;
    let redis: Redis;
    let pipeline: TestPipeline | undefined;

    beforeAll(async () => {
      servers = await startServers('flush');
      redis = new Redis(servers.source.url);
      pipeline = await startPipeline(testConfigInput(servers, { producer: { reconcileIntervalMs: RECONCILE_MS } }));
    });

    afterAll(async () => {
      await pipeline?.stop();
      redis.disconnect();
      await servers.stop();
    });

    async function writeAndIndex(n: number): Promise<void> {
      for (let i = 0; i < n; i++) await redis.set(`k:${i}`, String(i));
      await waitFor(
        'the keys to be indexed',
        () => docCount(pipeline!.ctx, servers.index),
        (c) => c === n,
        20000,
      );
    }

    it.each(['FLUSHDB', 'FLUSHALL'] as const)('%s deletes the documents', async (command) => {
      await writeAndIndex(20);
      const producer = notificationProducer(pipeline!);
      await producer.idle();
      const [gaps, reconciliations] = [producer.mode.gaps, producer.reconciliations];
      const started = Date.now();
      await (command === 'FLUSHDB' ? redis.flushdb() : redis.flushall());
      await waitFor(
        `${command} to empty the index`,
        () => docCount(pipeline!.ctx, servers.index),
        (c) => c === 0,
        WITHIN_MS,
      );
      expect(Date.now() - started).toBeLessThan(WITHIN_MS);
      expect(producer.mode.gaps).toBe(gaps);
      await producer.idle();
      expect(producer.reconciliations).toBe(reconciliations + 1);
    });

    it('after the subscription reconnected (a new client id to redirect to)', async () => {
      const producer = notificationProducer(pipeline!);
      const gaps = producer.mode.gaps;
      await redis.client('KILL', 'TYPE', 'PUBSUB');
      await waitFor(
        'the gap to be closed',
        async () => producer.mode.gaps,
        (g) => g > gaps,
        10000,
      );
      await producer.idle();
      await writeAndIndex(5);
      await redis.flushdb();
      await waitFor(
        'FLUSHDB to empty the index',
        () => docCount(pipeline!.ctx, servers.index),
        (c) => c === 0,
        WITHIN_MS,
      );
    });

    it('ordinary writes are not announced', async () => {
      const producer = notificationProducer(pipeline!);
      await producer.idle();
      const reconciliations = producer.reconciliations;
      await writeAndIndex(10);
      await new Promise((r) => setTimeout(r, 500));
      await producer.idle();
      expect(producer.reconciliations).toBe(reconciliations);
    });
  });

  describe('on a master of a 3-master Cluster', () => {
    let cluster: RedisClusterHandle;
    let queue: RedisServerHandle;
    let redis: Cluster;
    let pipeline: TestPipeline | undefined;
    const index = uniqueIndex('flush-cluster');

    beforeAll(async () => {
      [cluster, queue] = await Promise.all([startRedisCluster({ masters: 3, replicasPerMaster: 0 }), startRedis()]);
      redis = new Cluster([{ host: '127.0.0.1', port: cluster.nodes[0]!.port }]);
      const input: ConfigInput = {
        logLevel: (process.env.TEST_LOG_LEVEL as ConfigInput['logLevel']) ?? 'silent',
        redis: { cluster: { nodes: cluster.urls } },
        queue: { url: queue.url },
        elasticsearch: { url: esUrl() },
        mapping: { defaultIndex: index },
        producer: { reconcileIntervalMs: RECONCILE_MS },
        worker: { lockDurationMs: 4000, stalledIntervalMs: 1000, retryBaseMs: 50, retryMaxMs: 1000 },
      };
      pipeline = await startPipeline(input);
    });

    afterAll(async () => {
      await pipeline?.stop();
      redis?.disconnect();
      await Promise.all([cluster?.stop(), queue?.stop()]);
    });

    it('FLUSHALL on one master deletes the documents of its keys, and only those', async () => {
      const keys = Array.from({ length: 30 }, (_, i) => `c:${i}`);
      for (const k of keys) await redis.set(k, k);
      await waitFor(
        'the keys to be indexed',
        () => docCount(pipeline!.ctx, index),
        (c) => c === keys.length,
        20000,
      );
      const [port] = await cluster.masterPorts();
      const master = new Redis(port!);
      try {
        const slots = await Promise.all(keys.map(async (k) => [k, await redis.cluster('KEYSLOT', k)] as const));
        const ranges = await master.cluster('SLOTS');
        const held = slots
          .filter(([, s]) => ranges.some(([from, to, owner]) => owner?.[1] === port && s >= from && s <= to))
          .map(([k]) => k);
        expect(held.length).toBeGreaterThan(0);
        const producer = notificationProducer(pipeline!);
        await producer.idle();
        const gaps = producer.mode.gaps;
        await master.flushall();
        const kept = keys.filter((k) => !held.includes(k)).sort();
        await waitFor(
          'the flushed keys’ documents to go',
          () => docIds(pipeline!.ctx, index),
          (ids) => ids.length === kept.length,
          WITHIN_MS,
        );
        expect(await docIds(pipeline!.ctx, index)).toEqual(kept);
        expect(producer.mode.gaps).toBe(gaps);
      } finally {
        master.disconnect();
      }
    });
  });
});
