import { Redis } from 'ioredis';
import { unfinishedJobs } from '../../shared/core/queue';
import {
  exited,
  spawnCli,
  startPipeline,
  startServers,
  testConfigInput,
  waitFor,
  waitInSync,
  type TestPipeline,
  type TestServers,
} from '../support/pipeline';

const KEYS = 20000;

/** A worker killed with SIGKILL mid-batch: its jobs are taken over and nothing is lost. */
describe('a worker killed mid-batch', () => {
  let servers: TestServers;
  let producer: TestPipeline;
  let redis: Redis;
  let victim: ReturnType<typeof spawnCli> | undefined;
  let survivor: ReturnType<typeof spawnCli> | undefined;

  beforeAll(async () => {
    servers = await startServers('crash');
    redis = new Redis(servers.source.url);
    for (let i = 0; i < KEYS; i += 1000) {
      const pipe = redis.pipeline();
      for (let j = i; j < i + 1000; j++) pipe.hset(`item:${j}`, { n: String(j), name: `item ${j}` });
      await pipe.exec();
    }
  });

  afterAll(async () => {
    victim?.kill('SIGKILL');
    survivor?.kill('SIGKILL');
    await Promise.all([victim, survivor].filter((c) => c !== undefined).map((c) => exited(c)));
    await producer?.stop();
    redis.disconnect();
    await servers.stop();
  });

  it('retries the dead worker’s jobs elsewhere and converges', async () => {
    const input = testConfigInput(servers, { worker: { bulkMaxDocs: 200, maxInflightBulks: 1, concurrency: 100 } });
    victim = spawnCli(input, ['worker']);
    producer = await startPipeline(input, { producer: true, worker: false });
    const queue = producer.ctx.queues().partitions[0]!;

    // Kill it while it holds active jobs and part of the data is indexed.
    const active = await waitFor(
      'the victim to hold active jobs',
      () => queue.getActiveCount(),
      (n) => n > 0,
      60000,
      20,
    );
    victim.kill('SIGKILL');
    await exited(victim);
    const orphaned = await queue.getActive();
    expect(active).toBeGreaterThan(0);
    expect(orphaned.length).toBeGreaterThan(0);
    expect(await unfinishedJobs(queue)).toBeGreaterThan(0);

    // More changes while no worker runs.
    await redis.hset('item:1', 'name', 'changed while no worker ran');
    await redis.del('item:2');

    survivor = spawnCli(input, ['worker']);
    await waitFor(
      'queue drained',
      () => unfinishedJobs(queue),
      (n) => n === 0,
      120000,
      250,
    );
    for (const job of orphaned) {
      const state = await queue.getJobState(job.id!);
      // Completed, or already removed by the completed-jobs retention: not stuck, not failed.
      expect(['completed', 'unknown']).toContain(state);
    }
    await producer.service.producer!.idle();
    const report = await waitInSync(producer.ctx, 60000);
    expect(report.checked).toBe(KEYS - 1);
  });
});
