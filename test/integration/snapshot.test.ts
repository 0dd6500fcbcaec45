import { Redis } from 'ioredis';
import { ChangeSink } from '../../producers/change-sink';
import { snapshot } from '../../producers/snapshot';
import type { Progress } from '../../shared/platform/progress';
import { unfinishedJobs } from '../../shared/core/queue';
import { VersionCounter, versionKey } from '../../shared/core/versions';
import {
  startPipeline,
  startServers,
  testConfigInput,
  verifyNow,
  waitFor,
  waitInSync,
  type TestPipeline,
  type TestServers,
} from '../support/pipeline';
import { testEs } from '../support/raw-es';

const KEYS = 5000;

describe('snapshot', () => {
  let servers: TestServers;
  let redis: Redis;
  let pipeline: TestPipeline | undefined;

  beforeAll(async () => {
    servers = await startServers('snapshot');
    redis = new Redis(servers.source.url);
    const pipe = redis.pipeline();
    for (let i = 0; i < KEYS; i++) pipe.set(`k:${i}`, String(i));
    await pipe.exec();
  });

  afterAll(async () => {
    await pipeline?.stop();
    redis.disconnect();
    await servers.stop();
  });

  it('an interrupted snapshot resumes from its saved cursor and misses no key', async () => {
    pipeline = await startPipeline(testConfigInput(servers), { producer: false, worker: false });
    const { ctx } = pipeline;
    const queue = ctx.queues().partitions[0]!;
    const sink = new ChangeSink(
      ctx.queues(),
      new VersionCounter(ctx.queueRedis, versionKey(ctx.config.queue.prefix)),
      { prefix: ctx.config.queue.prefix, batch: 500, flushMs: 2, hotKeyWindowMs: 0 },
      ctx.logger,
    );
    const abort = new AbortController();
    let seen = 0;
    const stopAfterTwoPages: Progress = {
      setTotal: () => undefined,
      increment: (n) => {
        seen += n;
        if (seen >= 2 * 1000) abort.abort();
      },
      stop: () => undefined,
    };
    const opts = {
      databases: [0],
      patterns: ['*'],
      scanCount: 1000,
      batchKeys: 500,
      prefix: ctx.config.queue.prefix,
      src: 'snapshot' as const,
    };
    const first = await snapshot(
      { source: ctx.source, queueRedis: ctx.queueRedis, sink, logger: ctx.logger },
      { ...opts, resume: true, progress: stopAfterTwoPages, signal: abort.signal },
    );
    expect(first.aborted).toBe(true);
    expect(first.keys).toBeGreaterThan(0);
    expect(first.keys).toBeLessThan(KEYS);

    const second = await snapshot(
      { source: ctx.source, queueRedis: ctx.queueRedis, sink, logger: ctx.logger },
      { ...opts, resume: true },
    );
    expect(second.aborted).toBe(false);
    expect(second.keys).toBeLessThan(KEYS);

    const jobs = await queue.getWaiting(0, -1);
    const enqueued = new Set(jobs.flatMap((j) => j.data.keys));
    expect(enqueued.size).toBe(KEYS);
    expect(first.keys + second.keys).toBeLessThan(KEYS + 2000);
    expect(jobs.every((j) => j.data.keys.length <= 500)).toBe(true);
    // Finished: the cursors are gone, so the next snapshot starts over.
    expect(await ctx.queueRedis.exists(`${ctx.config.queue.prefix}:cursors:snapshot`)).toBe(0);
    await queue.obliterate({ force: true });
    await pipeline.stop();
    pipeline = undefined;
  });

  it('with the queue in the source Redis, only the data is indexed, never the queue’s keys', async () => {
    const input = testConfigInput(servers, { producer: { reconcileIntervalMs: 0 } });
    pipeline = await startPipeline({ ...input, queue: { url: servers.source.url } });
    const { ctx } = pipeline;
    await redis.set('k:live', 'x');
    await waitFor(
      'queue drained',
      () => unfinishedJobs(ctx.queues().partitions[0]!),
      (n) => n === 0,
      60000,
      200,
    );
    const report = await waitInSync(ctx);
    expect(report.checked).toBe(KEYS + 1);
    expect(await redis.exists(`${ctx.config.queue.prefix}:version`)).toBe(1);
    const own = await testEs().count({ index: servers.index, q: `key:${ctx.config.queue.prefix}*` });
    expect(own.count).toBe(0);
    expect((await verifyNow(ctx)).extra).toEqual([]);
  });
});
