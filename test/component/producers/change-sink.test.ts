import { Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import { ConfigSchema } from '../../../producers/capture/registry';
import { createLogger } from '../../../shared/platform/logger';
import { captureModeSource, BATCH_JOB, CHANGE_JOB, SyncQueues, type SyncJobData } from '../../../shared/core/queue';
import { closeRedis, connectRedis } from '../../../shared/platform/redis';
import { VersionCounter, versionKey } from '../../../shared/core/versions';
import { ChangeSink, type ChangeSinkSettings } from '../../../producers/change-sink';
import { LeaseLostError } from '../../../shared/platform/errors';
import { startRedis, type RedisServerHandle } from '../../support/redis-server';

/** The source of live changes in these tests; the sink carries whatever source a mode names. */
const LIVE = captureModeSource('notification');

const PREFIX = 'res-test';
const logger = createLogger('silent');

let server: RedisServerHandle;
let connection: Redis;
const queues: SyncQueues[] = [];
const workers: Worker<SyncJobData, void>[] = [];
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
function setup(
  settings: Partial<ChangeSinkSettings> = {},
  now: () => number = Date.now,
  partitions = 1,
): { queue: SyncQueues; sink: ChangeSink; counter: VersionCounter } {
  const config = ConfigSchema.parse({
    redis: { url: server.url },
    queue: { url: server.url, prefix: PREFIX, name: `changes-${++queueCount}`, partitions },
    elasticsearch: { url: 'http://es.test:9200' },
  });
  const queue = SyncQueues.create(config, connection);
  queues.push(queue);
  const counter = new VersionCounter(connection, versionKey(PREFIX), now);
  const sink = new ChangeSink(
    queue,
    counter,
    { prefix: PREFIX, batch: 100, flushMs: 60_000, hotKeyWindowMs: 0, ...settings },
    logger,
  );
  return { queue, sink, counter };
}

async function jobsOf(queue: SyncQueues): Promise<Job<SyncJobData, void>[]> {
  const jobs = (
    await Promise.all(
      queue.partitions.map((q) => q.getJobs(['waiting', 'active', 'delayed', 'prioritized', 'completed', 'failed'])),
    )
  ).flat();
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
    for (let i = 0; i < 50; i++) sink.capture(2, 'user:1', LIVE);
    expect(sink.buffered).toBe(1);
    expect(sink.captured).toBe(50);
    await sink.flush();
    const jobs = await jobsOf(queue);
    expect(jobs).toHaveLength(1);
    expect(jobs[0]!.name).toBe(CHANGE_JOB);
    expect(jobs[0]!.data).toMatchObject({ db: 2, keys: ['user:1'], src: 'notification' });
    expect(jobs[0]!.data.t).toBeLessThanOrEqual(Date.now());
    expect(sink.enqueued).toBe(1);
    expect(sink.buffered).toBe(0);
  });

  it('puts the keys of one flush in one job per database', async () => {
    const { queue, sink } = setup();
    sink.capture(0, 'a', LIVE);
    sink.capture(1, 'a', LIVE);
    sink.capture(0, 'b', LIVE);
    sink.capture(0, 'c', 'reconcile');
    await sink.flush();
    const jobs = await jobsOf(queue);
    expect(jobs.map((j) => [j.data.db, j.data.src, j.data.keys])).toEqual([
      [0, 'notification', ['a', 'b']],
      [0, 'reconcile', ['c']],
      // The same key in another database is another document, so it is in another job.
      [1, 'notification', ['a']],
    ]);
    expect(jobs.every((j) => j.name === CHANGE_JOB)).toBe(true);
  });

  it('holds a hot key until its window ends, then enqueues its last change once', async () => {
    const { queue, sink } = setup({ hotKeyWindowMs: 300, flushMs: 1 });
    sink.capture(0, 'hot', LIVE);
    sink.capture(0, 'cold', LIVE);
    await waitFor(async () => (await jobsOf(queue)).length === 1);
    const enqueuedAt = Date.now();
    // Changed again and again right after its job was enqueued: held, not a job per change.
    for (let i = 0; i < 20; i++) sink.capture(0, 'hot', LIVE);
    sink.capture(0, 'other', LIVE);
    await waitFor(async () => (await jobsOf(queue)).length === 2);
    expect(sink.buffered).toBe(1);
    await waitFor(async () => (await jobsOf(queue)).length === 3, 2000);
    const jobs = await jobsOf(queue);
    expect(jobs.map((j) => j.data.keys)).toEqual([['hot', 'cold'], ['other'], ['hot']]);
    expect(Date.now() - enqueuedAt).toBeGreaterThanOrEqual(250);
    expect(sink.buffered).toBe(0);
    expect(sink.captured).toBe(23);
  });

  it('flush() enqueues held hot keys at once, so stopping loses none', async () => {
    const { queue, sink } = setup({ hotKeyWindowMs: 60_000 });
    sink.capture(0, 'hot', LIVE);
    await sink.flush();
    sink.capture(0, 'hot', LIVE);
    expect(sink.buffered).toBe(1);
    await sink.flush();
    expect((await jobsOf(queue)).map((j) => j.data.keys)).toEqual([['hot'], ['hot']]);
    expect(sink.buffered).toBe(0);
  });

  it('gives jobs increasing versions, consecutive within a flush', async () => {
    const { queue, sink } = setup();
    sink.capture(0, 'a', LIVE);
    sink.capture(0, 'b', LIVE);
    sink.capture(0, 'c', LIVE);
    await sink.flush();
    sink.capture(0, 'd', 'reconcile');
    await sink.flush();
    const jobs = await jobsOf(queue);
    expect(jobs.map((j) => j.data.keys)).toEqual([['a', 'b', 'c'], ['d']]);
    // keys[i] was captured as v + i: a, b, c consecutive, d after them.
    const [abc, d] = jobs.map((j) => j.data.v);
    expect(d).toBeGreaterThanOrEqual(abc! + 3);
    expect(jobs[1]!.data.src).toBe('reconcile');
    expect(abc).toBeGreaterThan((Date.now() - 60_000) * 1000);
  });

  it('ignores keys under the queue prefix', async () => {
    const { queue, sink } = setup();
    sink.capture(0, `${PREFIX}:changes:1`, LIVE);
    sink.capture(0, `${PREFIX}:version`, LIVE);
    expect(sink.buffered).toBe(0);
    expect(sink.captured).toBe(0);
    expect(await sink.enqueueKeys(0, [`${PREFIX}:x`], 'snapshot')).toBe(0);
    // Only the prefix followed by ':' is ours.
    sink.capture(0, `${PREFIX}x`, LIVE);
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
    expect(jobs[0]!.name).toBe(BATCH_JOB);
    expect(jobs[0]!.data).toMatchObject({ db: 3, keys: ['x', 'y', 'w'], src: 'snapshot' });
    // keys[i] was captured as v + i: the block of three is reserved, the next version follows it.
    expect(await counter.allocate(1)).toBe(jobs[0]!.data.v + 3);
    expect(sink.enqueued).toBe(3);
  });

  it('enqueueBatch splits a partition’s keys into even jobs of at most jobKeys, versions consecutive', async () => {
    const frozen = Date.now();
    const { queue, sink, counter } = setup({}, () => frozen, 2);
    const keys = Array.from({ length: 1001 }, (_, i) => `page:${i}`);
    expect(await sink.enqueueBatch(0, keys, 'snapshot', 100)).toEqual({
      keys: 1001,
      jobs: (await jobsOf(queue)).length,
    });
    const jobs = await jobsOf(queue);
    for (const [p, q] of queue.partitions.entries()) {
      const mine = jobs.filter((j) => j.queueName === q.name);
      const held = mine.reduce((n, j) => n + j.data.keys.length, 0);
      // As few jobs as jobKeys allows, their sizes within one of each other.
      expect(mine).toHaveLength(Math.ceil(held / 100));
      const sizes = mine.map((j) => j.data.keys.length);
      expect(Math.max(...sizes)).toBeLessThanOrEqual(100);
      expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(1);
      for (const j of mine) expect(j.data.keys.every((k) => queue.partitionOf(0, k) === p)).toBe(true);
    }
    expect(jobs.flatMap((j) => j.data.keys).sort()).toEqual([...keys].sort());
    // One INCRBY for the whole page: the jobs' version ranges tile one consecutive range.
    for (let i = 1; i < jobs.length; i++)
      expect(jobs[i]!.data.v).toBe(jobs[i - 1]!.data.v + jobs[i - 1]!.data.keys.length);
    expect(await counter.allocate(1)).toBe(jobs[0]!.data.v + 1001);
  });

  it('puts the keys of a flush and of a batch in one job per partition, each in its own queue, versions consecutive', async () => {
    const { queue, sink } = setup({ batch: 1000 }, Date.now, 4);
    const keys = Array.from({ length: 200 }, (_, i) => `p:${i}`);
    for (const k of keys) sink.capture(0, k, LIVE);
    await sink.flush();
    await sink.enqueueKeys(0, keys, 'snapshot');
    for (const [name, want] of [
      [CHANGE_JOB, 200],
      [BATCH_JOB, 200],
    ] as const) {
      const byPartition = await Promise.all(
        queue.partitions.map(async (q, p) => ({
          p,
          jobs: (await q.getJobs(['waiting'])).filter((j) => j.name === name),
        })),
      );
      // One job per partition, each holding exactly the keys that hash there.
      for (const { p, jobs } of byPartition) {
        expect(jobs).toHaveLength(1);
        expect(jobs[0]!.data.keys.every((k) => queue.partitionOf(0, k) === p)).toBe(true);
      }
      const all = byPartition.flatMap(({ jobs }) => jobs.map((j) => j.data));
      expect(all.flatMap((d) => d.keys).sort()).toEqual([...keys].sort());
      // One INCRBY for the flush: the jobs' version ranges tile one consecutive range.
      const ranges = all.map((d) => [d.v, d.v + d.keys.length] as const).sort((a, b) => a[0] - b[0]);
      for (let i = 1; i < ranges.length; i++) expect(ranges[i]![0]).toBe(ranges[i - 1]![1]);
      expect(ranges.at(-1)![1] - ranges[0]![0]).toBe(want);
    }
  });

  it('flushes by itself when the batch is full or flushMs has passed', async () => {
    const full = setup({ batch: 3, flushMs: 60_000 });
    ['a', 'b', 'c'].forEach((k) => full.sink.capture(0, k, LIVE));
    await waitFor(async () => (await jobsOf(full.queue)).length === 1);
    expect((await jobsOf(full.queue))[0]!.data.keys).toEqual(['a', 'b', 'c']);

    const timed = setup({ batch: 100, flushMs: 5 });
    timed.sink.capture(0, 'later', LIVE);
    expect(timed.sink.buffered).toBe(1);
    await waitFor(async () => (await jobsOf(timed.queue)).length === 1);
    expect(timed.sink.buffered).toBe(0);
  });

  it('a lease lost in a flush nobody awaited fails the next flush, so no caller takes the drop for done', async () => {
    const { queue, counter } = setup();
    let held = true;
    const fenced = queue.fenced(async () => {
      if (!held) throw new LeaseLostError('producer lease lost (test)');
    });
    const sink = new ChangeSink(
      fenced,
      counter,
      { prefix: PREFIX, batch: 2, flushMs: 60_000, hotKeyWindowMs: 0 },
      logger,
    );
    sink.capture(0, 'a', LIVE);
    await sink.flush();
    held = false;
    // A full batch flushes by itself, in the background: refused there.
    sink.capture(0, 'b', LIVE);
    sink.capture(0, 'c', LIVE);
    await waitFor(() => sink.leaseLost);
    expect(sink.buffered).toBe(0);
    const err: unknown = await sink.flush().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LeaseLostError);
    expect((err as LeaseLostError).code).toBe('LEASE_LOST');
    expect((await jobsOf(queue)).map((j) => j.data.keys)).toEqual([['a']]);
  });

  it('a change captured while its key is being processed becomes one follow-up job', async () => {
    const { queue, sink } = setup({ hotKeyWindowMs: 200, flushMs: 1 });
    const seen: SyncJobData[] = [];
    let release: () => void = () => undefined;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const workerConnection = connectRedis(server.url, { name: 'change-sink-worker', forBullmq: true });
    extraConnections.push(workerConnection);
    const worker = new Worker<SyncJobData, void, string>(
      queue.partitions[0]!.name,
      async (job) => {
        seen.push(job.data);
        if (seen.length === 1) await gate;
      },
      { connection: workerConnection, prefix: PREFIX },
    );
    workers.push(worker);

    sink.capture(0, 'hot', LIVE);
    await sink.flush();
    await waitFor(() => seen.length === 1);
    expect(await queue.getJobCounts('active')).toEqual({ active: 1 });

    // Changed again while the first job is active: held for the hot-key window, then one job.
    sink.capture(0, 'hot', LIVE);
    sink.capture(0, 'hot', LIVE);
    await waitFor(async () => (await queue.getJobCounts('waiting')).waiting === 1);

    release();
    await waitFor(() => seen.length === 2);
    await waitFor(async () => (await queue.getJobCounts('completed')).completed === 2);
    expect(seen[1]!.keys).toEqual(['hot']);
    expect(seen[1]!.v).toBeGreaterThan(seen[0]!.v);
    // Exactly one follow-up, however many changes came in meanwhile.
    await new Promise((r) => setTimeout(r, 50));
    expect(seen).toHaveLength(2);
    await worker.close();
  });

  it('waitForRoom holds a pass back while the queue has maxWaitingJobs waiting, and lets it go once workers take them', async () => {
    const { queue, sink } = setup({ maxWaitingJobs: 3 }, Date.now, 2);
    // Keys in both partitions: the limit counts the waiting jobs of every partition together.
    for (let i = 0; i < 2; i++)
      await sink.enqueueKeys(
        0,
        ['a', 'b', 'c', 'd', 'e', 'f'].map((k) => `${k}${i}`),
        'snapshot',
      );
    expect((await queue.getJobCounts('waiting')).waiting).toBe(4);
    let resolved = false;
    const room = sink.waitForRoom().then(() => (resolved = true));
    await new Promise((r) => setTimeout(r, 400));
    expect(resolved).toBe(false);

    const workerConnection = connectRedis(server.url, { name: 'change-sink-room', forBullmq: true });
    extraConnections.push(workerConnection);
    const partition = queue.partitions[1]!;
    const worker = new Worker<SyncJobData, void, string>(partition.name, async () => undefined, {
      connection: workerConnection,
      prefix: partition.opts.prefix,
    });
    workers.push(worker);
    await room;
    expect((await queue.getJobCounts('waiting')).waiting).toBeLessThan(3);
    await worker.close();

    // An abort lets a held pass go (a shutdown, a lost lease); 0 never holds.
    for (let i = 0; i < 3; i++) await sink.enqueueKeys(0, [`x${i}`, `y${i}`, `z${i}`], 'snapshot');
    const abort = new AbortController();
    const held = sink.waitForRoom(abort.signal);
    abort.abort();
    await held;
    await setup({ maxWaitingJobs: 0 }).sink.waitForRoom();
  });

  it('a flush ends with what was captured before it, though a change arrives during every enqueue', async () => {
    const { queue, sink } = setup({ batch: 5 });
    for (let i = 0; i < 50; i++) sink.capture(0, `before:${i}`, LIVE);
    // A capture stream the queue keeps pace with, but never a pause: one change per round trip.
    const addBulk = queue.addBulk.bind(queue);
    let n = 0;
    queue.addBulk = (jobs) => {
      sink.capture(0, `during:${n++}`, LIVE);
      return addBulk(jobs);
    };
    try {
      // A loose "does not hang" bound: the flush must not wait for the buffer to be empty.
      await Promise.race([
        sink.flush(),
        new Promise((_, reject) => setTimeout(() => reject(new Error('flush still running after 10 s')), 10_000)),
      ]);
    } finally {
      queue.addBulk = addBulk;
    }
    const keys = new Set((await jobsOf(queue)).flatMap((j) => j.data.keys));
    for (let i = 0; i < 50; i++) expect(keys.has(`before:${i}`)).toBe(true);
    // What arrived meanwhile is enqueued by the flush its capture scheduled.
    await waitFor(async () => (await jobsOf(queue)).flatMap((j) => j.data.keys).length === 50 + n);
  });
});
