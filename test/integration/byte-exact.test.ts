import { Redis } from 'ioredis';
import type { AppContext } from '../../cli/context';
import { keyFromBytes } from '../../shared/core/bytes';
import { inSync, type VerifyReport } from '../../features/maintenance/verify';
import { BIG_JSON, DEEP_JSON, EMPTY_KEY, byteCases, writeCases } from '../support/byte-cases';
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

const MAX_DOC = 64 * 1024;

/** Notifications mode on a standalone Redis: what each kind of key becomes, and a verify that catches every way the indexing could get it wrong. */
describe('byte-exact documents, and a verify that notices when they are not', () => {
  let servers: TestServers;
  let redis: Redis;
  let pipeline: TestPipeline | undefined;
  let ctx: AppContext;

  beforeAll(async () => {
    servers = await startServers('byte-exact');
    redis = new Redis(servers.source.url);
    await EMPTY_KEY.write(redis);
    await writeCases(redis, byteCases('pre:'));
    pipeline = await startPipeline(testConfigInput(servers, { worker: { maxDocumentBytes: MAX_DOC } }));
    ctx = pipeline.ctx;
    await writeCases(redis, byteCases('live:'));
  });

  afterAll(async () => {
    await pipeline?.stop();
    redis.disconnect();
    await servers.stop();
  });

  const route = (key: Buffer | string): { index: string; id: string } =>
    ctx.router.route(0, typeof key === 'string' ? key : keyFromBytes(key))!;
  const doc = async (key: Buffer | string): Promise<Record<string, unknown> | undefined> => {
    const r = route(key);
    return getDoc(ctx, r.index, r.id);
  };

  it('indexes every key exactly: verify finds nothing out of sync and nothing refused', async () => {
    const report = await waitInSync(ctx, 60000);
    expect(report.refused).toEqual([]);
    expect(report.checked).toBe(2 * byteCases('').length + 1);
  });

  it('writes the documented shape for each kind of bytes', async () => {
    expect(await doc('live:str:bin')).toMatchObject({
      key: 'live:str:bin',
      type: 'string',
      value: { $base64: Buffer.from([0, 0xff, 0xfe, 0x80, 0x74, 0x61, 0x69, 0x6c]).toString('base64') },
    });
    expect((await doc('live:json:big'))?.value).toBe(BIG_JSON);
    expect((await doc('live:json:deep'))?.value).toBe(DEEP_JSON);
    expect((await doc('live:json:exact'))?.value).toEqual({ a: 1, b: 'xA', c: [true, null, 2.5] });
    expect((await doc('live:hash:proto'))?.value).toEqual(
      JSON.parse('{"10":"ten","2":"two","__proto__":"x","constructor":"y"}'),
    );
    expect((await doc('live:hash:bin'))?.value).toEqual([
      ['ok', { $base64: '/g==' }],
      [{ $base64: '/wA=' }, 'v1'],
    ]);
    expect((await doc('live:zset:bin'))?.value).toEqual([
      { member: 'a', score: '-inf' },
      { member: 'c', score: 0 },
      { member: 'b', score: 1.1 },
      { member: 'd', score: 1e300 },
      { member: { $base64: '/w==' }, score: 'inf' },
    ]);
    expect((await doc('live:stream:repeat'))?.value).toEqual([
      {
        id: '1-1',
        fields: [
          ['a', '1'],
          ['a', '2'],
          [{ $base64: '/w==' }, { $base64: '/g==' }],
        ],
      },
      // Integer-like names would move first in an object: pairs keep the entry's order.
      {
        id: '1-2',
        fields: [
          ['__proto__', 'p'],
          ['b', '3'],
          ['1', 'one'],
        ],
      },
    ]);
    const binaryName = Buffer.concat([Buffer.from('live:'), Buffer.from([0xff, 0xfe]), Buffer.from(':str')]);
    expect(route(binaryName).id).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(await doc(binaryName)).toEqual({
      key_base64: binaryName.toString('base64'),
      db: 0,
      type: 'string',
      value: 'binary name',
      content: 'binary name',
    });
    expect(route('').id).toBe('sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    expect((await doc(''))?.value).toBe('the empty name');
    const long = `live:long:${'k'.repeat(40000)}`;
    expect((await doc(long))?.key === long).toBe(true);
  });

  it('keeps documents stable when a hashtable hash is rehashed without a write', async () => {
    for (let i = 0; i < 50; i++) await redis.hdel('live:hash:big', `absent${i}`);
    const report = await verifyNow(ctx);
    expect(inSync(report)).toBe(true);
  });

  it('replaces the document of a value that grows past maxDocumentBytes with a refusal stub', async () => {
    await redis.set('live:grow', 'small');
    await waitFor(
      'grow indexed',
      () => doc('live:grow'),
      (d) => d?.value === 'small',
      20000,
    );
    await redis.set('live:grow', 'x'.repeat(MAX_DOC + 1));
    const stub = await waitFor(
      'the stub',
      () => doc('live:grow'),
      (d) => d?.refused !== undefined,
      20000,
    );
    expect(stub).toEqual({
      key: 'live:grow',
      db: 0,
      type: 'string',
      refused: expect.stringMatching(/over worker.maxDocumentBytes/) as unknown,
    });
    const report = await waitInSync(ctx);
    expect(report.refused).toEqual(['live:grow']);
    expect(report.why['live:grow']).toMatch(/maxDocumentBytes/);
  });

  /** Overwrites a key's document with what a broken indexing path would have written; verify must name the key. */
  async function expectCaught(
    key: Buffer | string,
    corrupt: (d: Record<string, unknown>) => Record<string, unknown> | undefined,
    kind: 'stale' | 'missing' = 'stale',
    extra: string[] = [],
  ): Promise<VerifyReport> {
    const { index, id } = route(key);
    const good = (await getDoc(ctx, index, id))!;
    const bad = corrupt(structuredClone(good));
    if (bad) await testEs().index({ index, id, document: bad });
    else await testEs().delete({ index, id });
    try {
      const report = await verifyNow(ctx);
      const name = typeof key === 'string' ? key : keyFromBytes(key);
      expect(report[kind]).toEqual([name]);
      expect(report.extra).toEqual(extra);
      expect(report.missing.length + report.stale.length).toBe(1);
      return report;
    } finally {
      await testEs().index({ index, id, document: good });
    }
  }

  const lossy = (b64: string): string => Buffer.from(b64, 'base64').toString('utf8');

  it.each([
    [
      'bytes decoded as text (U+FFFD)',
      'live:str:bin',
      (d: Record<string, unknown>) => ({ ...d, value: lossy((d.value as { $base64: string }).$base64) }),
    ],
    ['a SETRANGE-split character', 'live:str:split', (d: Record<string, unknown>) => ({ ...d, value: 'h\uFFFDXllo' })],
    [
      'a JSON number rounded by a plain parse',
      'live:json:big',
      (d: Record<string, unknown>) => ({ ...d, value: JSON.parse(BIG_JSON) as unknown }),
    ],
    [
      'a dropped __proto__ field',
      'live:hash:proto',
      (d: Record<string, unknown>) => ({ ...d, value: { 10: 'ten', 2: 'two', constructor: 'y' } }),
    ],
    [
      'a binary hash field name decoded as text',
      'live:hash:bin',
      (d: Record<string, unknown>) => ({ ...d, value: { ok: '\uFFFD', '\uFFFD\u0000': 'v1' } }),
    ],
    [
      'repeated stream fields collapsed into an object',
      'live:stream:repeat',
      (d: Record<string, unknown>) => ({
        ...d,
        value: [{ id: '1-1', fields: { a: '2', '\uFFFD': '\uFFFD' } }, (d.value as unknown[])[1]],
      }),
    ],
    [
      'stream fields reordered',
      'live:stream:repeat',
      (d: Record<string, unknown>) => ({
        ...d,
        value: [(d.value as unknown[])[0], { id: '1-2', fields: { 1: 'one', __proto__: 'p', b: '3' } }],
      }),
    ],
    [
      'an infinite score clamped',
      'live:zset:bin',
      (d: Record<string, unknown>) => ({
        ...d,
        value: (d.value as { score: unknown }[]).map((e) =>
          e.score === 'inf' ? { ...e, score: Number.MAX_VALUE } : e,
        ),
      }),
    ],
    [
      'a set member lost',
      'live:set:bin',
      (d: Record<string, unknown>) => ({ ...d, value: (d.value as unknown[]).slice(1) }),
    ],
    [
      'a list out of order',
      'live:list:bin',
      (d: Record<string, unknown>) => ({ ...d, value: [...(d.value as unknown[])].reverse() }),
    ],
    ['a TTL dropped', 'live:ttl', (d: Record<string, unknown>) => ({ ...d, ttl_ms: undefined })],
    [
      'a value kept after it outgrew what can be indexed',
      'live:grow',
      (d: Record<string, unknown>) => ({ key: d.key, db: 0, type: 'string', value: 'small' }),
    ],
    ['deep JSON cut short', 'live:json:deep', (d: Record<string, unknown>) => ({ ...d, value: '{"a":[]}' })],
  ])('catches %s', async (_what, key, corrupt) => {
    const report = await expectCaught(key, corrupt);
    expect(report.why[key]).toMatch(/value|TTL/);
  });

  it('catches a binary key name written as text', async () => {
    const key = Buffer.concat([Buffer.from('live:hash:'), Buffer.from([0xc3])]);
    // The lossy name is no key of Redis: its document is extra too.
    const report = await expectCaught(
      key,
      ({ key_base64: _b64, ...d }) => ({ ...d, key: key.toString('utf8') }),
      'stale',
      [key.toString('utf8')],
    );
    expect(report.why[keyFromBytes(key)]).toMatch(/key/);
  });

  it('catches the empty key never indexed, and an HLL lost', async () => {
    await expectCaught('', () => undefined, 'missing');
    await expectCaught('live:hll', () => undefined, 'missing');
  });

  it('does not report a hash whose fields are indexed in another order', async () => {
    const { index, id } = route('live:hash:big');
    const good = (await getDoc(ctx, index, id))!;
    const reversed = Object.fromEntries(Object.entries(good.value as Record<string, string>).reverse());
    await testEs().index({ index, id, document: { ...good, value: reversed } });
    try {
      expect(inSync(await verifyNow(ctx))).toBe(true);
    } finally {
      await testEs().index({ index, id, document: good });
    }
  });
});
