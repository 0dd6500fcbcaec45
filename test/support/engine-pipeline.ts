import { Redis } from 'ioredis';
import { unfinishedJobs } from '../../shared/core/queue';
import type { ConfigInput } from '../../producers/capture/registry';
import type { TestEngine } from './engines';
import {
  exited,
  spawnCli,
  startPipeline,
  startServers,
  testConfigInput,
  waitFor,
  type TestPipeline,
  type TestServers,
} from './pipeline';

const USERS = 3000;
/** Short enough that requests time out during the outage, long enough for a busy machine. */
const REQUEST_TIMEOUT_MS = 10_000;

type Cli = ReturnType<typeof spawnCli>;

/**
 * The whole pipeline against one engine of the matrix, the tool pointed at it by URL alone (it
 * detects the product): a snapshot of mixed keys while a worker is killed with SIGKILL and a new
 * one takes over, live changes, deletes, TTL expiry, an outage of the engine (its JVM paused
 * while changes keep coming), and the `verify` command judging Redis and the engine in sync.
 * Documents are read over the engines' common REST API, independently of the tool's client.
 */
export function runEnginePipeline(engine: TestEngine): void {
  describe(`the pipeline on ${engine.id} (${engine.product} ${engine.version})`, () => {
    let servers: TestServers;
    let redis: Redis;
    let input: ConfigInput;
    let producer: TestPipeline | undefined;
    let victim: Cli | undefined;
    let worker: Cli | undefined;
    let paused = false;

    beforeAll(async () => {
      servers = await startServers(`e2e-${engine.id}`);
      redis = new Redis(servers.source.url);
      for (let i = 0; i < USERS; i += 500) {
        const pipe = redis.pipeline();
        for (let j = i; j < i + 500; j++) pipe.hset(`user:${j}`, { name: `user ${j}`, visits: '0' });
        await pipe.exec();
      }
      await redis.set('str', 'hello');
      await redis.set('json', JSON.stringify({ name: 'alice', tags: ['a', 'b'] }));
      await redis.rpush('list', 'x', 'y', 'z');
      await redis.sadd('set', 'c', 'a', 'b');
      await redis.zadd('zset', 2, 'two', 1, 'one');
      await redis.xadd('stream', '1-1', 'f', 'v');
      await redis.set('ttl:long', 'stays', 'EX', 1000);
      await redis.set(Buffer.from([0x6b, 0xff, 0x00, 0x01]), Buffer.from([0xc3, 0x28, 0x00]));
      input = testConfigInput(servers, {
        elasticsearch: { url: engine.url, requestTimeoutMs: REQUEST_TIMEOUT_MS },
        // Small bulks, one at a time: the snapshot takes long enough to kill a worker in it.
        worker: { bulkMaxDocs: 100, maxInflightBulks: 1, concurrency: 50 },
      });
    });

    afterAll(async () => {
      if (paused) engine.resume();
      for (const child of [victim, worker]) child?.kill('SIGKILL');
      await Promise.all([victim, worker].filter((c) => c !== undefined).map((c) => exited(c)));
      await producer?.stop();
      redis.disconnect();
      await servers.stop();
    });

    const doc = (id: string): Promise<Record<string, unknown> | undefined> =>
      getDocument(engine.url, servers.index, id);
    const eventually = <T>(what: string, probe: () => Promise<T>, check: (v: T) => boolean): Promise<T> =>
      waitFor(what, probe, check, 60000, 200);
    const drained = async (): Promise<void> => {
      await waitFor(
        'queue drained',
        () => unfinishedJobs(producer!.ctx.queues()),
        (n) => n === 0,
        180000,
        250,
      );
    };

    it('indexes a snapshot of mixed keys while a worker is killed with SIGKILL and another takes over', async () => {
      victim = spawnCli(input, ['worker']);
      producer = await startPipeline(input, { producer: true, worker: false });
      const queue = producer.ctx.queues();
      await waitFor(
        'the first worker to hold active jobs',
        async () => (await queue.getJobCounts('active')).active ?? 0,
        (n) => n > 0,
        120000,
        20,
      );
      victim.kill('SIGKILL');
      await exited(victim);
      expect(await unfinishedJobs(queue)).toBeGreaterThan(0);

      worker = spawnCli(input, ['worker']);
      await drained();
      expect((await queue.getJobCounts('failed')).failed).toBe(0);
      expect((await doc('user:0'))?.value).toEqual({ name: 'user 0', visits: '0' });
      expect((await doc(`user:${USERS - 1}`))?.value).toEqual({ name: `user ${USERS - 1}`, visits: '0' });
      expect(await doc('str')).toEqual({ key: 'str', db: 0, type: 'string', value: 'hello', content: 'hello' });
      expect((await doc('json'))?.value).toEqual({ name: 'alice', tags: ['a', 'b'] });
      expect((await doc('list'))?.value).toEqual(['x', 'y', 'z']);
      expect((await doc('set'))?.value).toEqual(['a', 'b', 'c']);
      expect((await doc('zset'))?.value).toEqual([
        { member: 'one', score: 1 },
        { member: 'two', score: 2 },
      ]);
      expect((await doc('stream'))?.value).toEqual([{ id: '1-1', fields: { f: 'v' } }]);
      expect((await doc('ttl:long'))?.ttl_ms).toBeGreaterThan(900_000);
      await expectVerifyInSync(input);
    });

    it('follows live changes, deletes and TTL expiry', async () => {
      await redis.hset('user:1', 'visits', '1');
      await redis.set('str', 'updated');
      await redis.set('created', 'fresh');
      await redis.del('user:2', 'list');
      await redis.srem('set', 'b');
      await redis.set('ttl:short', 'gone soon', 'PX', 300);
      await redis.pexpire('user:3', 300);

      await eventually(
        'user:1 updated',
        () => doc('user:1'),
        (d) => (d?.value as { visits?: string } | undefined)?.visits === '1',
      );
      await eventually(
        'str updated',
        () => doc('str'),
        (d) => d?.value === 'updated',
      );
      await eventually(
        'created indexed',
        () => doc('created'),
        (d) => d?.value === 'fresh',
      );
      await eventually(
        'user:2 deleted',
        () => doc('user:2'),
        (d) => d === undefined,
      );
      await eventually(
        'list deleted',
        () => doc('list'),
        (d) => d === undefined,
      );
      await eventually(
        'set member removed',
        () => doc('set'),
        (d) => JSON.stringify(d?.value) === '["a","c"]',
      );
      await eventually(
        'user:3 expired',
        () => doc('user:3'),
        (d) => d === undefined,
      );
      await eventually(
        'ttl:short expired',
        () => doc('ttl:short'),
        (d) => d === undefined,
      );
      expect(await redis.exists('user:3', 'ttl:short')).toBe(0);
      await drained();
      await expectVerifyInSync(input);
    });

    it('rides out an outage of the engine (its JVM paused) and loses no change', async () => {
      const queue = producer!.ctx.queues();
      engine.pause();
      paused = true;
      for (let i = 0; i < USERS; i += 10) await redis.hset(`user:${i}`, 'visits', '2');
      for (let i = 5; i < USERS; i += 100) await redis.del(`user:${i}`);
      await redis.set('created-during-outage', 'yes');
      await waitFor(
        'changes queued during the outage',
        () => unfinishedJobs(queue),
        (n) => n > 0,
        20000,
      );
      // Longer than the request timeout: requests time out and are retried, not failed.
      await new Promise((r) => setTimeout(r, REQUEST_TIMEOUT_MS + 2000));
      expect((await queue.getJobCounts('failed')).failed).toBe(0);
      engine.resume();
      paused = false;

      await drained();
      expect((await queue.getJobCounts('failed')).failed).toBe(0);
      expect((await doc('user:0'))?.value).toEqual({ name: 'user 0', visits: '2' });
      expect(await doc('user:5')).toBeUndefined();
      expect((await doc('created-during-outage'))?.value).toBe('yes');
    });

    it('verify finds Redis and the engine in sync', async () => {
      const { output } = await expectVerifyInSync(input);
      // user:2 and user:3 gone, one in a hundred deleted in the outage, seven other keys, two created.
      const expected = USERS - 2 - USERS / 100 + 7 + 2;
      expect(output).toContain(`checked ${String(expected)}, missing 0, stale 0, extra 0`);
    });
  });
}

/** Realtime GET of one document's source over the REST API Elasticsearch and OpenSearch share. */
async function getDocument(url: string, index: string, id: string): Promise<Record<string, unknown> | undefined> {
  const res = await fetch(`${url}/${index}/_doc/${encodeURIComponent(id)}`, { signal: AbortSignal.timeout(10_000) });
  const body = (await res.json()) as { found?: boolean; _source?: Record<string, unknown>; error?: unknown };
  if (res.status === 404 && body.error === undefined) return undefined;
  if (!res.ok) throw new Error(`GET ${index}/_doc/${id}: ${String(res.status)} ${JSON.stringify(body)}`);
  return body.found === true ? body._source : undefined;
}

/** Runs the `verify` command (a process of its own, the independent judge) until it exits 0. */
async function expectVerifyInSync(input: ConfigInput): Promise<{ code: number | null; output: string }> {
  const result = await waitFor(
    'verify to report Redis and the engine in sync',
    async () => {
      const cli = spawnCli(input, ['verify', '--settle-ms', '0']);
      const code = await exited(cli);
      return { code, output: cli.output() };
    },
    (r) => r.code === 0,
    60000,
    500,
  );
  expect(result.output).toMatch(/missing 0, stale 0/);
  return result;
}
