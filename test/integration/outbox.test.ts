import { Redis } from 'ioredis';
import { buildContext } from '../../cli/context';
import { createCapture } from '../../producers/capture/registry';
import type { CaptureHost } from '../../producers/capture/host';
import type { LeasedProducer } from '../../producers/leased-producer';
import type { OutboxMode } from '../../producers/capture/outbox/mode';
import { createLogger } from '../../shared/platform/logger';
import type { ConfigInput } from '../../producers/capture/registry';
import { inSync } from '../../features/maintenance/verify';
import { GROUP, STREAM, outboxDrained, pendingCount, startOutboxServers, writeWithEntry } from '../support/outbox';
import {
  exited,
  getDoc,
  loadedConfig,
  spawnCli,
  startPipeline,
  testConfigInput,
  verifyNow,
  waitFor,
  waitInSync,
  type TestPipeline,
  type TestServers,
} from '../support/pipeline';

const eventually = <T>(what: string, probe: () => Promise<T>, check: (v: T) => boolean): Promise<T> =>
  waitFor(what, probe, check, 30000, 50);

/** The outbox producer of the lease holder (the test's only producer leads at once). */
function outboxOf(pipeline: TestPipeline): CaptureHost<OutboxMode> {
  return (pipeline.service.producer as LeasedProducer).current as CaptureHost<OutboxMode>;
}

describe('outbox mode: what an application writes', () => {
  let servers: TestServers;
  let redis: Redis;
  let pipeline: TestPipeline | undefined;
  let input: ConfigInput;

  beforeAll(async () => {
    servers = await startOutboxServers('outbox');
    redis = new Redis(servers.source.url);
    // Written before the group exists: the first start indexes it by a snapshot.
    await redis.hset('before', { was: 'here' });
    input = testConfigInput(servers, {
      redis: { url: servers.source.url, databases: [0, 1] },
      producer: { mode: 'outbox', outbox: { consumer: 'app-test', blockMs: 200 } },
    });
    pipeline = await startPipeline(input);
  });

  afterAll(async () => {
    await pipeline?.stop();
    redis.disconnect();
    await servers.stop();
  });

  const doc = (id: string): Promise<Record<string, unknown> | undefined> => getDoc(pipeline!.ctx, servers.index, id);

  it('indexes changes written with their entry in one MULTI, a Lua script, several keys per entry and another db', async () => {
    await redis.multi().hset('user:1', { name: 'Ada' }).xadd(STREAM, '*', 'key', 'user:1').exec();
    await redis.eval(
      "redis.call('SET', KEYS[1], ARGV[1]); redis.call('XADD', KEYS[2], '*', 'key', KEYS[1]); return 1",
      2,
      'lua:1',
      STREAM,
      'from a script',
    );
    await redis.multi().set('a', '1').set('b', '2').xadd(STREAM, '*', 'op', 'pair', 'key', 'a', 'key', 'b').exec();
    await redis.eval(
      "redis.call('SELECT', 1); redis.call('SET', KEYS[1], 'x'); redis.call('SELECT', 0); redis.call('XADD', KEYS[2], '*', 'key', KEYS[1], 'db', 1); return 1",
      2,
      'other-db',
      STREAM,
    );

    await eventually(
      'the documents',
      () => doc('1:other-db'),
      (d) => d !== undefined,
    );
    expect((await doc('0:user:1'))?.value).toEqual({ name: 'Ada' });
    expect((await doc('0:lua:1'))?.value).toBe('from a script');
    expect((await doc('0:a'))?.value).toBe('1');
    expect((await doc('0:b'))?.value).toBe('2');
    expect((await doc('0:before'))?.value).toEqual({ was: 'here' });

    await redis.multi().del('user:1').xadd(STREAM, '*', 'key', 'user:1').exec();
    await eventually(
      'the delete',
      () => doc('0:user:1'),
      (d) => d === undefined,
    );
    await waitInSync(pipeline!.ctx);
  });

  it('acknowledges, counts and skips malformed entries without holding up the stream', async () => {
    const producer = outboxOf(pipeline!);
    const before = producer.mode.stats.malformed;
    await redis.xadd(STREAM, '*', 'value', 'no key here');
    await redis.xadd(STREAM, '*', 'key', 'ghost', 'db', '7');
    await redis.xadd(STREAM, '*', 'key', 'x', 'db', 'one');
    await redis.multi().set('after-malformed', 'ok').xadd(STREAM, '*', 'key', 'after-malformed').exec();

    await eventually(
      'the entry after the malformed ones',
      () => doc('0:after-malformed'),
      (d) => d !== undefined,
    );
    await eventually(
      'the outbox drained',
      () => outboxDrained(redis),
      (d) => d,
    );
    expect(producer.mode.stats.malformed - before).toBe(3);
    expect(await pendingCount(redis)).toBe(0);
  });

  it('captures the empty key, a valid Redis key, beside the other keys of its entry', async () => {
    const before = outboxOf(pipeline!).mode.stats.malformed;
    await redis
      .multi()
      .set('', 'the empty key')
      .set('beside-empty', 'ok')
      .xadd(STREAM, '*', 'key', '', 'key', 'beside-empty')
      .exec();
    await eventually(
      'the empty key indexed',
      () => doc('0:'),
      (d) => d !== undefined,
    );
    expect(await doc('0:beside-empty')).toBeDefined();
    expect(outboxOf(pipeline!).mode.stats.malformed).toBe(before);
  });

  it('acknowledges an entry only once its job is in the queue', async () => {
    const queueRedis = new Redis(servers.queue.url);
    try {
      // Writes to the queue Redis hang: the producer can read the entry but not enqueue it.
      await queueRedis.call('CLIENT', 'PAUSE', '600000', 'WRITE');
      const [, [, id]] = (await redis
        .multi()
        .set('while-paused', '1')
        .xadd(STREAM, '*', 'key', 'while-paused')
        .exec()) as [unknown, [unknown, string]];
      await eventually(
        'the entry delivered',
        async () => {
          const groups = (await redis.xinfo('GROUPS', STREAM)) as unknown[][];
          return groups[0]![groups[0]!.indexOf('last-delivered-id') + 1];
        },
        (last) => last === id,
      );
      const pending = (await redis.xpending(STREAM, GROUP, '-', '+', 10)) as [string, string][];
      expect(pending.map(([p]) => p)).toEqual([id]);
    } finally {
      await queueRedis.call('CLIENT', 'UNPAUSE');
      queueRedis.disconnect();
    }
    await eventually(
      'the outbox drained',
      () => outboxDrained(redis),
      (d) => d,
    );
    await eventually(
      'the document',
      () => doc('0:while-paused'),
      (d) => d !== undefined,
    );
  });

  it('recreates its group when the stream is deleted, and reads the new stream from its start', async () => {
    await redis.del(STREAM);
    await redis.multi().set('after-delete', '1').xadd(STREAM, '*', 'key', 'after-delete').exec();
    await eventually(
      'the change written after the delete',
      () => doc('0:after-delete'),
      (d) => d !== undefined,
    );
    await eventually(
      'the outbox drained',
      () => outboxDrained(redis),
      (d) => d,
    );
  });

  it('trims what the group acknowledged', async () => {
    await redis.multi().set('trim-me', '1').xadd(STREAM, '*', 'key', 'trim-me').exec();
    await eventually(
      'the acknowledged entries trimmed away',
      () => redis.xlen(STREAM),
      (n) => n === 0,
    );
    expect(outboxOf(pipeline!).mode.stats.trimmed).toBeGreaterThan(0);
  });

  it('misses a change written without an entry until a requested reconciliation repairs it', async () => {
    await redis.set('untracked', 'written without an entry');
    await redis.multi().set('tracked', 'y').xadd(STREAM, '*', 'key', 'tracked').exec();
    await eventually(
      'the tracked change',
      () => doc('0:tracked'),
      (d) => d !== undefined,
    );
    const report = await verifyNow(pipeline!.ctx);
    expect(report.missing).toEqual(['0:untracked']);

    outboxOf(pipeline!).requestReconcile();
    await outboxOf(pipeline!).idle();
    const repaired = await waitInSync(pipeline!.ctx);
    expect(inSync(repaired)).toBe(true);
  });

  it('repairs writes and deletes made without entries with the reconcile command', async () => {
    await redis.del('tracked');
    await redis.hset('untracked-hash', { n: '1' });
    const before = await verifyNow(pipeline!.ctx);
    expect({ missing: before.missing, extra: before.extra }).toEqual({
      missing: ['0:untracked-hash'],
      extra: ['0:tracked'],
    });

    const cli = spawnCli(input, ['reconcile', '--wait']);
    expect(await exited(cli)).toBe(0);
    expect(inSync(await verifyNow(pipeline!.ctx))).toBe(true);
  });
});

describe('outbox mode: entries other consumers left behind', () => {
  let servers: TestServers;
  let redis: Redis;
  let pipeline: TestPipeline | undefined;

  beforeAll(async () => {
    servers = await startOutboxServers('outbox-claim');
    redis = new Redis(servers.source.url);
  });

  afterAll(async () => {
    await pipeline?.stop();
    redis.disconnect();
    await servers.stop();
  });

  const write = (key: string): Promise<string> => writeWithEntry(redis, key);
  const readAs = (consumer: string, count: number): Promise<unknown> =>
    redis.xreadgroup('GROUP', GROUP, consumer, 'COUNT', count, 'STREAMS', STREAM, '>');

  it('keeps entries a dead consumer never acknowledged when trimming, then takes them over with XAUTOCLAIM', async () => {
    await redis.xgroup('CREATE', STREAM, GROUP, '0', 'MKSTREAM');
    // A consumer that handled two entries, then read three more and died.
    const done = [await write('done:1'), await write('done:2')];
    await readAs('dead', 2);
    await redis.xack(STREAM, GROUP, ...done);
    const held = [await write('held:1'), await write('held:2'), await write('held:3')];
    await readAs('dead', 3);
    // One of them was deleted from the stream meanwhile: its change cannot be known any more.
    await redis.xdel(STREAM, held[2]!);
    const fresh = [await write('fresh:1'), await write('fresh:2')];

    const base = testConfigInput(servers, {
      producer: { mode: 'outbox', outbox: { consumer: 'live', blockMs: 200, claimIdleMs: 3_600_000 } },
    });
    pipeline = await startPipeline(base);
    const first = outboxOf(pipeline);
    await eventually(
      'the fresh entries handled',
      () => Promise.resolve(first.mode.stats.acked),
      (n) => n === 2,
    );
    // Trimming removes what the dead consumer acknowledged, and keeps what it still holds.
    await eventually(
      'the acknowledged entries trimmed',
      () => redis.xrange(STREAM, '-', '+'),
      (e) => e.length === 4,
    );
    expect((await redis.xrange(STREAM, '-', '+')).map(([id]) => id)).toEqual([held[0], held[1], ...fresh]);
    const stillHeld = (await redis.xpending(STREAM, GROUP, '-', '+', 10, 'dead')) as [string, string][];
    expect(stillHeld.map(([id]) => id)).toEqual(expect.arrayContaining([held[0], held[1]]));
    expect(await getDoc(pipeline.ctx, servers.index, 'held:1')).toBeUndefined();
    expect(first.mode.stats.claimed).toBe(0);
    await pipeline.stop();

    // A producer that waits only briefly before it decides a consumer is dead takes them over.
    pipeline = await startPipeline({
      ...base,
      producer: { mode: 'outbox', outbox: { consumer: 'live', blockMs: 200, claimIdleMs: 100 } },
    });
    const second = outboxOf(pipeline);
    await eventually(
      'the held entries claimed',
      () => Promise.resolve(second.mode.stats.claimed),
      (n) => n === 2,
    );
    // Redis 7 drops a deleted entry from the pending list on the first XAUTOCLAIM that passes it, idle or not.
    expect(first.mode.stats.deleted + second.mode.stats.deleted).toBe(1);
    await eventually(
      'the outbox drained and trimmed',
      () => redis.xlen(STREAM),
      (n) => n === 0,
    );
    expect(await pendingCount(redis)).toBe(0);
    // The dead consumer, holding nothing any more, is removed from the group.
    const consumers = async (): Promise<string[]> =>
      ((await redis.xinfo('CONSUMERS', STREAM, GROUP)) as unknown[][]).map((c) => String(c[c.indexOf('name') + 1]));
    await eventually('the dead consumer forgotten', consumers, (names) => !names.includes('dead'));
    expect(await consumers()).toEqual(['live']);
    // Everything this producer was given is indexed; done:* were acknowledged by the stand-in
    // consumer without enqueueing anything, and held:3's change was known only from the deleted entry.
    const report = await verifyNow(pipeline.ctx);
    expect(report.missing.sort()).toEqual(['done:1', 'done:2', 'held:3']);
    expect(report.stale.length + report.extra.length).toBe(0);
  });
});

describe('outbox mode: trimming to a length', () => {
  let servers: TestServers;
  let redis: Redis;
  let pipeline: TestPipeline | undefined;

  beforeAll(async () => {
    servers = await startOutboxServers('outbox-maxlen');
    redis = new Redis(servers.source.url);
  });

  afterAll(async () => {
    await pipeline?.stop();
    redis.disconnect();
    await servers.stop();
  });

  const write = (key: string): Promise<string> => writeWithEntry(redis, key, key);

  it('keeps about trimMaxLen entries, and never an unacknowledged one', async () => {
    const input = testConfigInput(servers, {
      producer: { mode: 'outbox', outbox: { consumer: 'live', blockMs: 200, claimIdleMs: 3_600_000, trimMaxLen: 3 } },
    });
    const first: string[] = [];
    for (let i = 0; i < 6; i++) first.push(await write(`k:${i}`));
    pipeline = await startPipeline(input);
    await eventually(
      'the stream trimmed to 3',
      async () => (await redis.xrange(STREAM, '-', '+')).map(([id]) => id),
      (ids) => ids.length === 3,
    );
    expect((await redis.xrange(STREAM, '-', '+')).map(([id]) => id)).toEqual(first.slice(3));
    await pipeline.stop();
    pipeline = undefined;

    // An entry another consumer holds stops the trim before it, however long the stream grows.
    const held = await write('held');
    await redis.xreadgroup('GROUP', GROUP, 'dead', 'COUNT', 1, 'STREAMS', STREAM, '>');
    const later: string[] = [];
    for (let i = 0; i < 5; i++) later.push(await write(`later:${i}`));
    pipeline = await startPipeline(input);
    await eventually(
      'the entries before the held one trimmed',
      async () => (await redis.xrange(STREAM, '-', '+')).map(([id]) => id),
      (ids) => ids[0] === held,
    );
    await eventually(
      'the later entries handled',
      () => outboxDrained(redis, 1),
      (d) => d,
    );
    expect((await redis.xrange(STREAM, '-', '+')).map(([id]) => id)).toEqual([held, ...later]);
  });
});

describe('outbox mode: the stream is not data', () => {
  let servers: TestServers;

  beforeAll(async () => {
    servers = await startOutboxServers('outbox-name');
  });

  afterAll(async () => {
    await servers.stop();
  });

  async function startWith(input: ConfigInput): Promise<void> {
    const ctx = buildContext(loadedConfig(input), createLogger('silent'));
    try {
      const producer = createCapture({
        config: ctx.config,
        source: ctx.source,
        queueRedis: ctx.queueRedis,
        queue: ctx.queues(),
        searchSink: ctx.sink,
        router: ctx.router,
        logger: ctx.logger,
      });
      await producer.start();
      await producer.stop();
    } finally {
      await ctx.close();
    }
  }

  it('refuses a stream name that the mapping would index, and accepts it with a skip rule', async () => {
    const outbox = { stream: 'app:changes', blockMs: 100 };
    await expect(startWith(testConfigInput(servers, { producer: { mode: 'outbox', outbox } }))).rejects.toThrow(
      'producer.outbox.stream: the stream app:changes would itself be indexed as data',
    );
    await startWith(
      testConfigInput(servers, {
        producer: { mode: 'outbox', outbox },
        mapping: { defaultIndex: servers.index, rules: [{ match: 'app:changes', skip: true }] },
      }),
    );
    const redis = new Redis(servers.source.url);
    try {
      expect(await redis.type('app:changes')).toBe('stream');
    } finally {
      redis.disconnect();
    }
  });
});

describe('outbox mode: a new group from $', () => {
  let servers: TestServers;
  let redis: Redis;
  let pipeline: TestPipeline | undefined;

  beforeAll(async () => {
    servers = await startOutboxServers('outbox-dollar');
    redis = new Redis(servers.source.url);
  });

  afterAll(async () => {
    await pipeline?.stop();
    redis.disconnect();
    await servers.stop();
  });

  it('skips the entries already in the stream, and indexes their keys by the first reconciliation', async () => {
    await redis.multi().set('old', 'before the group').xadd(STREAM, '*', 'key', 'old').exec();
    pipeline = await startPipeline(
      testConfigInput(servers, { producer: { mode: 'outbox', outbox: { startFrom: '$', blockMs: 200 } } }),
    );
    await redis.multi().set('new', 'after the group').xadd(STREAM, '*', 'key', 'new').exec();
    await outboxOf(pipeline).idle();
    await eventually(
      'the outbox drained',
      () => outboxDrained(redis),
      (d) => d,
    );
    await waitInSync(pipeline.ctx);
    expect(outboxOf(pipeline).mode.stats.read).toBe(1);
  });
});
