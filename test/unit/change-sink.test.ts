import { Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import { ConfigSchema } from '../../shared/config/schema';
import { createLogger } from '../../shared/logger';
import { BATCH_JOB, CHANGE_JOB, createQueue, type SyncJobData, type SyncQueue } from '../../shared/queue';
import { closeRedis, connectRedis } from '../../shared/redis';
import { VersionCounter, versionKey } from '../../shared/versions';
import { ChangeSink, type ChangeSinkSettings } from '../../producers/change-sink';
import { startRedis, type RedisServerHandle } from '../support/redis-server';

const PREFIX = 'res-test';
const logger = createLogger('silent');

let server: RedisServerHandle;
let connection: Redis;
const queues: SyncQueue[] = [];
const workers: Worker<SyncJobData, void, string>[] = [];
const extraConnections: Redis[] = [];

beforeAll(async () => {
  server = await startRedis();
  connection = connectRedis(server.url, { name: 'change-sink-test', forBullmq: true });
});

afterAll(async () => {
  await Promise.all(workers.map((w) => w.close(true)));
  await Promise.all(queues.map((q) => q.close()));
  await closeRedis(connection, ...extraConnections);
  await server?.stop();
});

let queueCount = 0;

/** A queue of the test's own (same Redis, same prefix, different name) and a sink writing to it. */
function setup(settings: Partial<ChangeSinkSettings> = {}, now: () => number = Date.now): { queue: SyncQueue; sink: ChangeSink; counter: VersionCounter } {
  const config = ConfigSchema.parse({
    redis: { url: server.url },
    queue: { url: server.url, prefix: PREFIX, name: `changes-${++queueCount}` },
    elasticsearch: { url: 'http://es.test:9200' },
  });
  const queue = createQueue(config, connection);
  queues.push(queue);
  const counter = new VersionCounter(connection, versionKey(PREFIX), now);
  const sink = new ChangeSink(queue, counter, { prefix: PREFIX, batch: 100, flushMs: 60_000, ...settings }, logger);
  return { queue, sink, counter };
}

async function jobsOf(queue: SyncQueue): Promise<Job<SyncJobData, void, string>[]> {
  const jobs = await queue.getJobs(['waiting', 'active', 'delayed', 'prioritized', 'completed', 'failed']);
  return jobs.sort((a, b) => a.data.v - b.data.v);
}

async function waitFor(check: () => Promise<boolean> | boolean, timeoutMs = 4000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('ChangeSink', () => {
  it('coalesces repeated captures of a key before a flush into one job', async () => {
    const { queue, sink } = setup();
    for (let i = 0; i < 50; i++) sink.capture(2, 'user:1');
    expect(sink.buffered).toBe(1);
    expect(sink.captured).toBe(50);
    await sink.flush();
    const jobs = await jobsOf(queue);
    expect(jobs).toHaveLength(1);
    expect(jobs[0].name).toBe(CHANGE_JOB);
    expect(jobs[0].data).toMatchObject({ db: 2, keys: ['user:1'], src: 'notification' });
    expect(jobs[0].data.t).toBeLessThanOrEqual(Date.now());
    expect(sink.enqueued).toBe(1);
    expect(sink.buffered).toBe(0);
  });

  it('a waiting job absorbs later changes of its key (BullMQ deduplication)', async () => {
    const { queue, sink } = setup();
    sink.capture(0, 'k');
    await sink.flush();
    sink.capture(0, 'k');
    await sink.flush();
    expect(await queue.getJobCounts('waiting')).toEqual({ waiting: 1 });
    // The same key in another database is another document, so another job.
    sink.capture(1, 'k');
    await sink.flush();
    expect(await queue.getJobCounts('waiting')).toEqual({ waiting: 2 });
  });

  it('gives jobs increasing versions, consecutive within a flush', async () => {
    const { queue, sink } = setup();
    sink.capture(0, 'a');
    sink.capture(0, 'b');
    sink.capture(0, 'c');
    await sink.flush();
    sink.capture(0, 'd', 'reconcile');
    await sink.flush();
    const jobs = await jobsOf(queue);
    expect(jobs.map((j) => j.data.keys[0])).toEqual(['a', 'b', 'c', 'd']);
    const [a, b, c, d] = jobs.map((j) => j.data.v);
    expect(b).toBe(a + 1);
    expect(c).toBe(b + 1);
    expect(d).toBeGreaterThan(c);
    expect(jobs[3].data.src).toBe('reconcile');
    expect(a).toBeGreaterThan((Date.now() - 60_000) * 1000);
  });

  it('ignores keys under the queue prefix', async () => {
    const { queue, sink } = setup();
    sink.capture(0, `${PREFIX}:changes:1`);
    sink.capture(0, `${PREFIX}:version`);
    expect(sink.buffered).toBe(0);
    expect(sink.captured).toBe(0);
    expect(await sink.enqueueKeys(0, [`${PREFIX}:x`], 'snapshot')).toBe(0);
    // Only the prefix followed by ':' is ours.
    sink.capture(0, `${PREFIX}x`);
    await sink.flush();
    expect((await jobsOf(queue)).map((j) => j.data.keys)).toEqual([[`${PREFIX}x`]]);
  });

  it('enqueueKeys makes one batch job with consecutive versions', async () => {
    // A clock that stands still, so the wall-clock floor cannot move the counter between calls.
    const frozen = Date.now();
    const { queue, sink, counter } = setup({}, () => frozen);
    const count = await sink.enqueueKeys(3, ['x', 'y', `${PREFIX}:z`, 'w'], 'snapshot');
    expect(count).toBe(3);
    const jobs = await jobsOf(queue);
    expect(jobs).toHaveLength(1);
    expect(jobs[0].name).toBe(BATCH_JOB);
    expect(jobs[0].data).toMatchObject({ db: 3, keys: ['x', 'y', 'w'], src: 'snapshot' });
    // keys[i] was captured as v + i: the block of three is reserved, the next version follows it.
    expect(await counter.allocate(1)).toBe(jobs[0].data.v + 3);
    expect(sink.enqueued).toBe(3);
  });

  it('flushes by itself when the batch is full or flushMs has passed', async () => {
    const full = setup({ batch: 3, flushMs: 60_000 });
    ['a', 'b', 'c'].forEach((k) => full.sink.capture(0, k));
    await waitFor(async () => (await jobsOf(full.queue)).length === 3);

    const timed = setup({ batch: 100, flushMs: 5 });
    timed.sink.capture(0, 'later');
    expect(timed.sink.buffered).toBe(1);
    await waitFor(async () => (await jobsOf(timed.queue)).length === 1);
    expect(timed.sink.buffered).toBe(0);
  });

  it('a change captured while its key is being processed becomes a follow-up job (keepLastIfActive)', async () => {
    const { queue, sink } = setup();
    const seen: SyncJobData[] = [];
    let release: () => void = () => undefined;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const workerConnection = connectRedis(server.url, { name: 'change-sink-worker', forBullmq: true });
    extraConnections.push(workerConnection);
    const worker = new Worker<SyncJobData, void, string>(
      queue.name,
      async (job) => {
        seen.push(job.data);
        if (seen.length === 1) await gate;
      },
      { connection: workerConnection, prefix: PREFIX },
    );
    workers.push(worker);

    sink.capture(0, 'hot');
    await sink.flush();
    await waitFor(() => seen.length === 1);
    expect(await queue.getJobCounts('active')).toEqual({ active: 1 });

    // Changed again while the first job is active: not absorbed by it, not yet a job of its own.
    sink.capture(0, 'hot');
    await sink.flush();
    sink.capture(0, 'hot');
    await sink.flush();
    expect(await queue.getJobCounts('waiting')).toEqual({ waiting: 0 });

    release();
    await waitFor(() => seen.length === 2);
    await waitFor(async () => (await queue.getJobCounts('completed')).completed === 2);
    expect(seen[1].keys).toEqual(['hot']);
    expect(seen[1].v).toBeGreaterThan(seen[0].v);
    // Exactly one follow-up, however many changes came in meanwhile.
    await new Promise((r) => setTimeout(r, 50));
    expect(seen).toHaveLength(2);
    await worker.close();
  });
});
