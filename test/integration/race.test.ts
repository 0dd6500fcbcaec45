import { Redis } from 'ioredis';
import {
  exited,
  getDoc,
  spawnCli,
  startPipeline,
  startServers,
  testConfigInput,
  waitFor,
  waitInSync,
  type TestPipeline,
  type TestServers,
} from '../support/pipeline';
import { unfinishedJobs } from '../../shared/core/queue';

const HOT_KEYS = 6;
const UPDATES_PER_KEY = 300;

/**
 * Four worker processes race on a few hot keys while snapshots of the same keys run beside
 * the live changes; whatever order the writes reach Elasticsearch in, the final state must
 * be Redis's final state.
 */
describe('four workers racing on hot keys', () => {
  let servers: TestServers;
  let producer: TestPipeline;
  let redis: Redis;
  const workers: ReturnType<typeof spawnCli>[] = [];

  beforeAll(async () => {
    servers = await startServers('race');
    redis = new Redis(servers.source.url);
    // No hot-key window: every change races its own job.
    const input = testConfigInput(servers, {
      worker: { concurrency: 50, bulkMaxDocs: 20, flushMs: 2 },
      producer: { hotKeyWindowMs: 0 },
    });
    producer = await startPipeline(input, { producer: true, worker: false });
    for (let i = 0; i < 4; i++) workers.push(spawnCli(input, ['worker']));
    await waitFor(
      'four workers',
      () => producer.ctx.queues().partitions[0]!.getWorkersCount(),
      (n) => n >= 4,
      30000,
    );
  });

  afterAll(async () => {
    for (const w of workers) w.kill('SIGKILL');
    await Promise.all(workers.map(exited));
    await producer?.stop();
    redis.disconnect();
    await servers.stop();
  });

  it('converges to the final value of every key', async () => {
    const writers = Array.from({ length: HOT_KEYS }, async (_, k) => {
      const key = `hot:${k}`;
      for (let i = 0; i < UPDATES_PER_KEY; i++) {
        if (i % 50 === 49) await redis.del(key);
        else if (k % 3 === 0) await redis.set(key, `v${i}`);
        else if (k % 3 === 1) await redis.hset(key, 'n', String(i), `f${i % 7}`, String(i));
        else await redis.rpush(key, String(i));
        // Snapshots race the live jobs: stale batch reads must never win.
        if (i % 60 === 0) producer.service.producer!.requestReconcile();
        if (i % 10 === 0) await new Promise((r) => setImmediate(r));
      }
    });
    await Promise.all(writers);
    await redis.set('hot:last', 'end');
    await waitFor(
      'queue drained',
      () => unfinishedJobs(producer.ctx.queues().partitions[0]!),
      (n) => n === 0,
      60000,
      200,
    );
    await producer.service.producer!.idle();
    await waitInSync(producer.ctx, 60000);
    for (let k = 0; k < HOT_KEYS; k++) {
      const doc = await getDoc(producer.ctx, servers.index, `hot:${k}`);
      const type = await redis.type(`hot:${k}`);
      if (type === 'string') expect(doc?.value).toBe(await redis.get(`hot:${k}`));
      if (type === 'hash') expect(doc?.value).toEqual(await redis.hgetall(`hot:${k}`));
      if (type === 'list') expect(doc?.value).toEqual(await redis.lrange(`hot:${k}`, 0, -1));
    }
    // The race was real: several worker processes completed jobs.
    const completed = await producer.ctx.queues().partitions[0]!.getCompleted(0, 999);
    expect(new Set(completed.map((j) => j.processedBy)).size).toBeGreaterThan(1);
    for (const w of workers) expect(w.exitCode).toBeNull();
  });
});
