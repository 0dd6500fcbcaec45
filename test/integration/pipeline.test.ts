import { Redis } from 'ioredis';
import type { CaptureHost } from '../../producers/capture/host';
import type { NotificationMode } from '../../producers/capture/notifications/mode';
import type { LeasedProducer } from '../../producers/leased-producer';
import { inSync } from '../../features/maintenance/verify';
import {
  getDoc,
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

/** Snapshot and live capture of every Redis type, end to end on real servers. */
describe('Redis → BullMQ → Elasticsearch', () => {
  let servers: TestServers;
  let redis: Redis;
  let pipeline: TestPipeline | undefined;
  let index: string;

  beforeAll(async () => {
    servers = await startServers('pipeline');
    index = servers.index;
    redis = new Redis(servers.source.url);
    // Present before the tool starts: the initial snapshot must bring all of it.
    await redis.set('str', 'hello');
    await redis.set('json', JSON.stringify({ name: 'alice', age: 30 }));
    await redis.set('jsonarr', '[1,2]');
    await redis.hset('hash', { a: '1', b: '2' });
    await redis.rpush('list', 'x', 'y', 'z');
    await redis.sadd('set', 'c', 'a', 'b');
    await redis.zadd('zset', 2, 'two', 1, 'one', 3, 'three');
    await redis.xadd('stream', '1-1', 'f', 'v');
    await redis.set('ttl', 'soon', 'EX', 1000);
    pipeline = await startPipeline(testConfigInput(servers));
  });

  afterAll(async () => {
    await pipeline?.stop();
    redis.disconnect();
    await servers.stop();
  });

  const doc = (id: string): Promise<Record<string, unknown> | undefined> => getDoc(pipeline!.ctx, index, id);
  const eventually = <T>(what: string, probe: () => Promise<T>, check: (v: T) => boolean): Promise<T> =>
    waitFor(what, probe, check, 20000);

  it('indexes every existing key in the default mapping', async () => {
    await waitInSync(pipeline!.ctx);
    expect(await doc('str')).toEqual({ key: 'str', db: 0, type: 'string', value: 'hello', content: 'hello' });
    expect((await doc('json'))?.value).toEqual({ name: 'alice', age: 30 });
    expect((await doc('jsonarr'))?.value).toBe('[1,2]');
    expect((await doc('hash'))?.value).toEqual({ a: '1', b: '2' });
    expect((await doc('list'))?.value).toEqual(['x', 'y', 'z']);
    expect((await doc('set'))?.value).toEqual(['a', 'b', 'c']);
    expect((await doc('zset'))?.value).toEqual([
      { member: 'one', score: 1 },
      { member: 'two', score: 2 },
      { member: 'three', score: 3 },
    ]);
    expect((await doc('stream'))?.value).toEqual([{ id: '1-1', fields: { f: 'v' } }]);
    const ttl = (await doc('ttl'))?.ttl_ms as number;
    expect(ttl).toBeGreaterThan(900_000);
    expect(ttl).toBeLessThanOrEqual(1_000_000);
    expect((await doc('str'))?.ttl_ms).toBeUndefined();
  });

  it('follows live changes of every kind', async () => {
    await redis.set('str', 'updated');
    await redis.set('new', 'fresh');
    await redis.del('list');
    await redis.hset('hash', 'c', '3');
    await redis.hdel('hash', 'a');
    await redis.rpush('list2', 'p');
    await redis.lpush('list2', 'o');
    await redis.srem('set', 'b');
    await redis.zincrby('zset', 10, 'one');
    await redis.xadd('stream', '2-1', 'g', 'w');
    await redis.rename('json', 'json-renamed');
    await redis.set('short', 'lived', 'PX', 200);
    await redis.persist('ttl');

    await eventually(
      'str updated',
      () => doc('str'),
      (d) => d?.value === 'updated',
    );
    await eventually(
      'new indexed',
      () => doc('new'),
      (d) => d?.value === 'fresh',
    );
    await eventually(
      'list deleted',
      () => doc('list'),
      (d) => d === undefined,
    );
    await eventually(
      'hash fields',
      () => doc('hash'),
      (d) => JSON.stringify(d?.value) === JSON.stringify({ b: '2', c: '3' }),
    );
    await eventually(
      'list2',
      () => doc('list2'),
      (d) => JSON.stringify(d?.value) === '["o","p"]',
    );
    await eventually(
      'set member removed',
      () => doc('set'),
      (d) => JSON.stringify(d?.value) === '["a","c"]',
    );
    await eventually(
      'zset reordered',
      () => doc('zset'),
      (d) => (d?.value as { member: string }[] | undefined)?.[2]?.member === 'one',
    );
    await eventually(
      'stream appended',
      () => doc('stream'),
      (d) => (d?.value as unknown[] | undefined)?.length === 2,
    );
    await eventually(
      'rename source gone',
      () => doc('json'),
      (d) => d === undefined,
    );
    await eventually(
      'rename target',
      () => doc('json-renamed'),
      (d) => (d?.value as { name?: string } | undefined)?.name === 'alice',
    );
    await eventually(
      'ttl removed by PERSIST',
      () => doc('ttl'),
      (d) => d !== undefined && d.ttl_ms === undefined,
    );
    await eventually(
      'short-lived key indexed then expired',
      () => doc('short'),
      (d) => d === undefined,
    );
    expect(await redis.exists('short')).toBe(0);
    expect(inSync(await verifyNow(pipeline!.ctx))).toBe(true);
  });

  it('verify reports documents changed behind the tool’s back', async () => {
    await waitInSync(pipeline!.ctx);
    const es = testEs();
    // Stale: overwrite with a higher external version so the tool's own writes lose.
    await es.index({
      index,
      id: 'str',
      version: Number.MAX_SAFE_INTEGER,
      version_type: 'external',
      document: { key: 'str', db: 0, type: 'string', value: 'tampered' },
    });
    // Missing: a document removed directly (versioned delete so the pipeline does not re-add it by chance).
    await es.delete({ index, id: 'new' });
    // Extra: a document for a key Redis never had.
    await es.index({
      index,
      id: 'ghost',
      document: { key: 'ghost', db: 0, type: 'string', value: 'boo' },
      refresh: true,
    });
    const report = await verifyNow(pipeline!.ctx);
    expect(report.stale).toEqual(['str']);
    expect(report.missing).toEqual(['new']);
    expect(report.extra).toEqual(['ghost']);
    expect(report.checked).toBeGreaterThan(5);
  });

  it('reconciliation repairs what notifications cannot see (FLUSHDB, a lost subscription)', async () => {
    const producer = (pipeline!.service.producer as LeasedProducer).current as CaptureHost<NotificationMode>;
    await redis.set('before-flush', '1');
    await eventually(
      'before-flush',
      () => doc('before-flush'),
      (d) => d !== undefined,
    );
    await redis.flushdb(); // publishes no keyspace event
    await redis.set('after-flush', '2');
    // Drop the pub/sub connection: the producer must notice the gap and reconcile.
    const gapsBefore = producer.mode.gaps;
    await redis.client('KILL', 'TYPE', 'PUBSUB');
    await redis.set('during-gap', '3');
    await eventually(
      'gap counted',
      async () => producer.mode.gaps,
      (g) => g > gapsBefore,
    );
    await eventually(
      'flushed docs gone',
      () => doc('before-flush'),
      (d) => d === undefined,
    );
    await eventually(
      'ghost removed too',
      () => doc('ghost'),
      (d) => d === undefined,
    );
    await eventually(
      'during-gap indexed',
      () => doc('during-gap'),
      (d) => d?.value === '3',
    );
    // The tampered doc carries a version higher than the counter can reach, so it stays
    // until removed; everything else matches.
    await testEs().delete({ index, id: 'str' }, { ignore: [404] });
    const report = await verifyNow(pipeline!.ctx);
    expect(report).toEqual({ checked: 2, missing: [], stale: [], extra: [], refused: [], why: {} });
  });
});
