import { Redis } from 'ioredis';
import { partitionQueues } from '../../shared/core/partitions';
import { unfinishedJobs } from '../../shared/core/queue';
import type { ConfigInput } from '../../producers/capture/registry';
import { jobsCompleted, jobsEnqueued } from '../../shared/platform/metrics';
import {
  formatReport,
  startPipeline,
  startServers,
  testConfigInput,
  verifyNow,
  waitFor,
  waitInSync,
  type TestPipeline,
  type TestServers,
} from '../support/pipeline';

const KEYS = 3000;

/** The sum of a counter's samples whose partition label passes `which`. */
async function counted(
  metric: typeof jobsCompleted | typeof jobsEnqueued,
  which: (partition: string) => boolean,
): Promise<number> {
  const { values } = await metric.get();
  return values.filter((v) => which(String(v.labels.partition))).reduce((a, v) => a + v.value, 0);
}

const ofLayout =
  (count: number) =>
  (partition: string): boolean =>
    count === 1 ? partition === 'changes' : partition.endsWith(`of${count}`);

describe('changing queue.partitions on a running deployment', () => {
  let servers: TestServers;
  let redis: Redis;
  const running: TestPipeline[] = [];

  beforeAll(async () => {
    servers = await startServers('partitions-change');
    redis = new Redis(servers.source.url);
  });

  afterAll(async () => {
    await Promise.all(running.map((p) => p.stop()));
    redis?.disconnect();
    await servers?.stop();
  });

  function input(partitions: number): ConfigInput {
    return testConfigInput(servers, {
      queue: { url: servers.queue.url, partitions },
      producer: { leaseTtlMs: 1000, leaseRenewMs: 200 },
      worker: { formerPartitionsPollMs: 200 },
    });
  }

  async function start(partitions: number, part: 'producer' | 'worker'): Promise<TestPipeline> {
    const p = await startPipeline(input(partitions), { producer: part === 'producer', worker: part === 'worker' });
    running.push(p);
    return p;
  }

  async function stop(p: TestPipeline): Promise<void> {
    running.splice(running.indexOf(p), 1);
    await p.stop();
  }

  /** A rolling update of workers, then of producers, from one partition count to another. */
  async function roll(
    from: { worker: TestPipeline; producer: TestPipeline },
    fromCount: number,
    toCount: number,
  ): Promise<{ worker: TestPipeline; producer: TestPipeline }> {
    const worker = await start(toCount, 'worker');
    await stop(from.worker);
    // Only the new workers run now: the old producer's jobs, in the old partitions, are theirs to drain.
    const drainedBefore = await counted(jobsCompleted, ofLayout(fromCount));
    await waitFor(
      `the ${toCount}-partition worker to take jobs from the ${fromCount}-partition queues`,
      () => counted(jobsCompleted, ofLayout(fromCount)),
      (n) => n > drainedBefore + 5,
      30000,
    );
    const producer = await start(toCount, 'producer');
    const enqueuedBefore = await counted(jobsEnqueued, ofLayout(toCount));
    await stop(from.producer);
    await waitFor(
      `the ${toCount}-partition producer to take over and enqueue`,
      () => counted(jobsEnqueued, ofLayout(toCount)),
      (n) => n > enqueuedBefore + 5,
      30000,
    );
    return { worker, producer };
  }

  it('goes from 1 to 4 partitions and back to 1 while writes go on: nothing lost, nothing stale, no job left', async () => {
    const pipe = redis.pipeline();
    for (let i = 0; i < KEYS; i++) pipe.set(`k:${i}`, JSON.stringify({ i, v: 0 }));
    await pipe.exec();
    let deployment = { worker: await start(1, 'worker'), producer: await start(1, 'producer') };
    await waitInSync(deployment.worker.ctx, 60000);

    let writing = true;
    let op = 0;
    const writes = (async () => {
      while (writing) {
        const batch = redis.pipeline();
        for (let j = 0; j < 50; j++, op++) {
          const i = (op * 7919) % KEYS;
          if (op % 13 === 0) batch.del(`k:${i}`);
          else batch.set(`k:${i}`, JSON.stringify({ i, v: op }));
        }
        await batch.exec();
        await new Promise((r) => setTimeout(r, 10));
      }
    })();

    deployment = await roll(deployment, 1, 4);
    deployment = await roll(deployment, 4, 1);
    writing = false;
    await writes;
    expect(op).toBeGreaterThan(1000);

    const { ctx } = deployment.worker;
    await waitFor(
      'every queue of both layouts drained',
      () => unfinishedJobs(ctx.queues()),
      (n) => n === 0,
      60000,
    );
    const report = await waitInSync(ctx, 60000);
    expect(report.missing).toHaveLength(0);
    expect(report.stale).toHaveLength(0);
    expect(report.extra).toHaveLength(0);
    // Every queue either layout used, read directly: none holds a job.
    for (const count of [1, 4]) {
      for (const q of partitionQueues(ctx.config.queue.prefix, ctx.config.queue.name, count)) {
        const [list] = ctx
          .queues()
          .layout(count)
          .filter((queue) => queue.name === q.name);
        expect(await unfinishedJobs(list!)).toBe(0);
      }
    }
    expect((await ctx.queues().formerCounts()).sort()).toEqual([4]);
    process.stdout.write(`after 1 → 4 → 1 partitions: ${formatReport(await verifyNow(ctx))}\n`);
  }, 300_000);
});
