import type { Redis } from 'ioredis';
import { ChangeSink } from '../../../producers/change-sink';
import { snapshot } from '../../../producers/snapshot';
import { ConfigSchema } from '../../../producers/capture/registry';
import { SyncQueues } from '../../../shared/core/queue';
import { VersionCounter, versionKey } from '../../../shared/core/versions';
import { createLogger } from '../../../shared/platform/logger';
import type { Progress } from '../../../shared/platform/progress';
import { closeRedis, connectRedis, RedisDbPool } from '../../../shared/platform/redis';
import { startRedis, type RedisServerHandle } from '../../support/redis-server';

const PREFIX = 'res-snap';
const KEYS = 1000;
const BATCH = 100;
const logger = createLogger('silent');

let source: RedisServerHandle;
let queueServer: RedisServerHandle;
let connection: Redis;
let pool: RedisDbPool;

beforeAll(async () => {
  [source, queueServer] = await Promise.all([startRedis(), startRedis()]);
  connection = connectRedis(queueServer.url, { name: 'snapshot-test', forBullmq: true });
  pool = new RedisDbPool(source.url, 'snapshot-test-source', logger);
  const pipe = pool.db(0).pipeline();
  for (let i = 0; i < KEYS; i++) pipe.set(`k:${i}`, String(i));
  await pipe.exec();
});

afterAll(async () => {
  await pool?.close();
  await closeRedis(connection);
  await Promise.all([source?.stop(), queueServer?.stop()]);
});

/** A progress that remembers what it was told. */
function recorder(): Progress & { total: number; done: number } {
  return {
    total: 0,
    done: 0,
    setTotal(t) {
      this.total = t;
    },
    increment(by) {
      this.done += by;
    },
    stop() {
      // nothing to release
    },
  };
}

describe('snapshot over partitioned queues', () => {
  it.each([1, 4])('reports the jobs the %i partition(s) hold, and progress reaches its total', async (partitions) => {
    const config = ConfigSchema.parse({
      redis: { url: source.url },
      queue: { url: queueServer.url, prefix: PREFIX, name: `snap-${partitions}`, partitions },
      elasticsearch: { url: 'http://es.test:9200' },
    });
    const queue = SyncQueues.create(config, connection);
    try {
      const sink = new ChangeSink(
        queue,
        new VersionCounter(connection, versionKey(PREFIX)),
        { prefix: PREFIX, batch: BATCH, flushMs: 60_000, hotKeyWindowMs: 0 },
        logger,
      );
      const progress = recorder();
      const result = await snapshot(
        { source: pool, queueRedis: connection, sink, logger },
        {
          databases: [0],
          patterns: ['*'],
          scanCount: 250,
          batchKeys: BATCH,
          prefix: PREFIX,
          resume: false,
          src: 'snapshot',
          progress,
        },
      );
      const held = await Promise.all(queue.partitions.map((q) => q.getWaitingCount()));
      const jobs = held.reduce((a, b) => a + b, 0);
      expect(result.keys).toBe(KEYS);
      expect(result.jobs).toBe(jobs);
      // Each batch of keys makes a job in every partition its keys fall in: more jobs than batches under P > 1.
      if (partitions > 1) {
        expect(jobs).toBeGreaterThan(KEYS / BATCH);
        for (const n of held) expect(n).toBeGreaterThan(0);
      }
      expect(progress.total).toBe(KEYS);
      expect(progress.done).toBe(KEYS);
    } finally {
      await queue.close();
    }
  });
});
