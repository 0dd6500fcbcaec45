import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Redis } from 'ioredis';
import { parse } from 'yaml';
import type { ConfigInput } from '../../producers/capture/registry';
import { createChangeSink } from '../../producers/change-sink';
import { FailureStore } from '../../shared/core/failure-store';
import { unfinishedJobs } from '../../shared/core/queue';
import { replayRefused } from '../../features/maintenance/replay';
import { uniqueIndex } from '../support/elasticsearch';
import {
  getDoc,
  startPipeline,
  startServers,
  testConfigInput,
  waitFor,
  waitInSync,
  type TestPipeline,
  type TestServers,
} from '../support/pipeline';
import { testEs } from '../support/raw-es';

const EXAMPLE = resolve(__dirname, '../../examples/sync.example.yml');

interface ExampleRule {
  index?: string;
  transform?: string;
}

/** examples/sync.example.yml as shipped, pointed at the test's servers and its own index names. */
function exampleConfig(servers: TestServers): { input: ConfigInput; index: (name: string) => string } {
  const raw = parse(readFileSync(EXAMPLE, 'utf8')) as {
    mapping: { rules: ExampleRule[]; indices: Record<string, unknown> };
    producer: ConfigInput['producer'];
    worker: ConfigInput['worker'];
  };
  const names = new Map<string, string>();
  const index = (name: string): string => {
    if (!names.has(name)) names.set(name, uniqueIndex(`rules-${name}`));
    return names.get(name)!;
  };
  const rules = raw.mapping.rules.map((r) => ({
    ...r,
    ...(r.index ? { index: index(r.index) } : {}),
    ...(r.transform ? { transform: resolve(EXAMPLE, '..', r.transform) } : {}),
  }));
  const indices = Object.fromEntries(Object.entries(raw.mapping.indices).map(([name, def]) => [index(name), def]));
  const base = testConfigInput(servers, { producer: raw.producer, worker: raw.worker });
  const input = {
    ...base,
    redis: { ...base.redis, databases: [0, 1] },
    mapping: { ...raw.mapping, defaultIndex: servers.index, rules, indices },
  } as ConfigInput;
  return { input, index };
}

/** Mapping rules from the shipped example, and what happens to documents Elasticsearch refuses. */
describe('mapping rules and rejected documents', () => {
  let servers: TestServers;
  let pipeline: TestPipeline | undefined;
  let redis: Redis;
  let index: (name: string) => string;

  beforeAll(async () => {
    servers = await startServers('rules');
    redis = new Redis(servers.source.url);
    const example = exampleConfig(servers);
    index = example.index;
    await redis.set(
      'user:1',
      JSON.stringify({
        first: 'Ada',
        last: 'Lovelace',
        email: 'ada@example.com',
        age: '36',
        created_at: '1815-12-10',
        secret: 'dropped',
      }),
    );
    await redis.set('session:1', 'never indexed');
    await redis.hset('order:eu:42', { total: '9.5', paid: 'yes', placed: '2024-01-01' });
    await redis.hset('customer:7', { first: 'Grace', last: 'Hopper' });
    await redis.hset('customer:8', { first: 'Soft', deleted: '1' });
    await redis.set('other', 'plain');
    pipeline = await startPipeline(example.input);
  });

  afterAll(async () => {
    await pipeline?.stop();
    redis.disconnect();
    await servers.stop();
  });

  it('routes, shapes and skips keys as the example config says', async () => {
    const { ctx } = pipeline!;
    await waitInSync(ctx);
    const user = await getDoc(ctx, index('users'), '1');
    expect(user).toEqual({
      key: 'user:1',
      db: 0,
      type: 'string',
      value: {
        first_name: 'Ada',
        last_name: 'Lovelace',
        email: 'ada@example.com',
        age: 36,
        created_at: '1815-12-10T00:00:00.000Z',
      },
    });
    const mapping = await testEs().indices.getMapping({ index: index('users') });
    expect(JSON.stringify(mapping)).toContain('"age":{"type":"integer"}');
    expect((await getDoc(ctx, index('orders'), '0:eu-42'))?.value).toEqual({
      total: 9.5,
      paid: true,
      placed: '2024-01-01',
    });
    const customer = await getDoc(ctx, index('customers'), '0:7');
    expect(customer?.value).toEqual({ first: 'Grace', last: 'Hopper', full_name: 'Grace Hopper' });
    expect(customer?.origin).toBe('db0/customer:7');
    expect(await getDoc(ctx, index('customers'), '0:8')).toBeUndefined();
    expect((await getDoc(ctx, servers.index, '0:other'))?.value).toBe('plain');
    const sessions = await testEs().search({ index: `${servers.index},${index('users')}`, q: 'key:"session:1"' });
    expect(sessions.hits.hits).toHaveLength(0);
  });

  it('refuses only the refused document, keeps its reason per key, and indexes the rest of the batch', async () => {
    const { ctx } = pipeline!;
    const queue = ctx.queues().partitions[0]!;
    const store = new FailureStore(ctx.queueRedis, ctx.config.queue.prefix);
    const pipe = redis.pipeline();
    // `placed` was mapped as a date by the first order; this one is refused by Elasticsearch.
    pipe.hset('order:eu:45', { total: '2', paid: 'no', placed: 'next week' });
    pipe.hset('order:eu:46', { total: '3', paid: 'no', placed: '2024-02-02' });
    // Refused by the rule itself: `coerce: { age: integer }`.
    pipe.set('user:2', JSON.stringify({ first: 'Bad', age: 'old' }));
    await pipe.exec();
    const refused = async (): Promise<Record<string, string>> =>
      Object.fromEntries((await store.matching({})).map((r) => [r.key, r.reason]));
    await waitFor('the refusals', refused, (r) => 'order:eu:45' in r && 'user:2' in r, 20000);
    await waitFor(
      'queue drained',
      () => unfinishedJobs(queue),
      (n) => n === 0,
      20000,
    );
    const reasons = await refused();
    expect(Object.keys(reasons).sort()).toEqual(['order:eu:45', 'user:2']);
    expect(reasons['order:eu:45']).toMatch(/^400 (document_parsing_exception|mapper_parsing_exception).*placed/);
    expect(reasons['user:2']).toMatch(/^field "age": cannot coerce "old" to integer/);
    expect(await queue.getFailedCount()).toBe(0);
    expect((await getDoc(ctx, index('orders'), '0:eu-46'))?.value).toMatchObject({ total: 3 });
    // Its old value must not stay searchable: a stub without the value says why.
    const stub = await getDoc(ctx, index('orders'), '0:eu-45');
    expect(stub).toEqual({
      db: 0,
      key: 'order:eu:45',
      type: 'hash',
      refused: expect.stringMatching(/failed to parse field \[value.placed\]/) as unknown,
    });
  });

  it('indexes a refused document once the cause is fixed and its key is replayed', async () => {
    const { ctx } = pipeline!;
    const store = new FailureStore(ctx.queueRedis, ctx.config.queue.prefix);
    const orders = index('orders');
    // An index that refuses writes (403 cluster_block_exception), as an operator might leave it.
    await testEs().indices.putSettings({ index: orders, settings: { 'index.blocks.write': true } });
    await redis.hset('order:eu:50', { total: '5', paid: 'yes', placed: '2024-03-03' });
    const rec = await waitFor(
      'order:eu:50 refused',
      async () => (await store.matching({})).find((r) => r.key === 'order:eu:50'),
      (r) => r !== undefined,
      20000,
    );
    expect(rec!.reason).toMatch(/cluster_block_exception/);
    expect(rec!.index).toBe(orders);

    await testEs().indices.putSettings({ index: orders, settings: { 'index.blocks.write': false } });
    await replayRefused(
      {
        store,
        enqueue: (db, keys) =>
          createChangeSink(ctx.config, ctx.queues(), ctx.queueRedis, ctx.logger, ctx.router).enqueueKeys(
            db,
            keys,
            'replay',
          ),
      },
      { pattern: /^order:eu:50$/ },
    );
    await waitFor(
      'replayed order indexed',
      () => getDoc(ctx, orders, '0:eu-50'),
      (d) => d?.value !== undefined,
      20000,
    );
    await waitFor(
      'order:eu:50 to leave the store',
      async () => (await store.matching({})).map((r) => r.key),
      (k) => !k.includes('order:eu:50'),
      20000,
    );
  });
});
