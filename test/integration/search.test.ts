import { Redis } from 'ioredis';
import { generationKey, settlingKey } from '../../features/search/generation';
import { bearer, metricValue } from '../support/http';
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
import { getFreePort } from '../support/ports';

interface Page {
  hits: { id: string; key: string; db: number; type: string; value?: unknown; score: number | null }[];
  total: number;
  next: unknown[] | null;
}

/** The search API on real servers: queries, pages, the generation-keyed cache, limits, auth, /doc. */
describe('the search API', () => {
  let servers: TestServers;
  let redis: Redis;
  let queueRedis: Redis;
  let pipeline: TestPipeline;
  let base: string;

  const get = async (
    path: string,
    headers: Record<string, string> = {},
  ): Promise<{ status: number; body: unknown }> => {
    const res = await fetch(`${base}${path}`, { headers });
    return { status: res.status, body: await res.json() };
  };
  const search = async (query: string): Promise<Page> => {
    const res = await get(`/search/${servers.index}?${query}`);
    if (res.status !== 200) throw new Error(`search ${query}: ${res.status} ${JSON.stringify(res.body)}`);
    return res.body as Page;
  };
  const post = async (body: unknown): Promise<{ status: number; body: unknown; cache?: string }> => {
    const res = await fetch(`${base}/search/${servers.index}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    const cache = res.headers.get('x-cache');
    return { status: res.status, body: await res.json(), ...(cache ? { cache } : {}) };
  };
  const cacheHits = async (): Promise<number> =>
    metricValue(await (await fetch(`${base}/metrics`)).text(), 'redis_es_sync_search_cache_total', { result: 'hit' }) ??
    0;
  const settled = (): Promise<number> => queueRedis.exists(settlingKey('redis-es-sync', servers.index));

  beforeAll(async () => {
    servers = await startServers('search');
    redis = new Redis(servers.source.url);
    queueRedis = new Redis(servers.queue.url);
    const port = await getFreePort();
    // A TTL far beyond the test: only the generation counter can make a cached answer go.
    const mapping = {
      defaultIndex: servers.index,
      rules: [{ match: 'order:*', index: `${servers.index}-orders`, id: 'o-{1}' }],
    };
    pipeline = await startPipeline(
      testConfigInput(servers, { http: { port }, mapping, search: { cacheTtlMs: 600_000, refreshWindowMs: 1500 } }),
    );
    base = `http://127.0.0.1:${port}`;
    await pipeline.service.producer!.idle();
    const pipe = redis.pipeline();
    for (let i = 0; i < 25; i++)
      pipe.set(`fruit:${String(i).padStart(2, '0')}`, JSON.stringify({ name: `apple ${i}` }));
    pipe.hset('basket:1', { colour: 'red', holds: 'apple' });
    pipe.hset('order:7', { item: 'plum', qty: '3' });
    await pipe.exec();
    await waitInSync(pipeline.ctx);
  });

  afterAll(async () => {
    await pipeline.stop();
    redis.disconnect();
    queueRedis.disconnect();
    await servers.stop();
  });

  it('finds indexed keys, filters by field and pages with search_after', async () => {
    const all = await waitFor(
      'the documents to be searchable',
      () => search('q=apple'),
      (p) => p.total === 26,
    );
    expect(all.hits).toHaveLength(20);

    const baskets = await search('q=apple&filter.type=hash');
    expect(baskets.total).toBe(1);
    expect(baskets.hits[0]).toMatchObject({
      id: 'basket:1',
      key: 'basket:1',
      db: 0,
      type: 'hash',
      value: { colour: 'red', holds: 'apple' },
    });
    expect(baskets.next).toBeNull();

    const keys: string[] = [];
    let next: unknown[] | null = null;
    let pages = 0;
    do {
      const after: string = next ? `&search_after=${encodeURIComponent(JSON.stringify(next))}` : '';
      const page = await search(`filter.type=string&sort=key:desc&size=10${after}`);
      keys.push(...page.hits.map((h) => h.key));
      next = page.next;
      pages++;
    } while (next !== null);
    expect(pages).toBe(3);
    expect(keys).toEqual(Array.from({ length: 25 }, (_, i) => `fruit:${String(24 - i).padStart(2, '0')}`));
  });

  it('serves a repeated search from the cache, and a new answer once a change is indexed', async () => {
    await waitFor('the last bulk to settle', settled, (n) => n === 0);
    const before = await cacheHits();
    expect((await search('q=zebra')).total).toBe(0);
    expect((await search('q=zebra')).total).toBe(0);
    expect(await cacheHits()).toBe(before + 1);

    const generation = Number(await queueRedis.get(generationKey('redis-es-sync', servers.index)));
    await redis.set('animal:1', 'zebra');
    await waitFor(
      'the generation to move',
      async () => Number(await queueRedis.get(generationKey('redis-es-sync', servers.index))),
      (g) => g > generation,
    );
    const found = await waitFor(
      'the change in the answer',
      () => search('q=zebra'),
      (p) => p.total === 1,
    );
    expect(found.hits[0]).toMatchObject({ key: 'animal:1', value: 'zebra' });

    await waitFor('the bulk to settle', settled, (n) => n === 0);
    const hits = await cacheHits();
    expect((await search('q=zebra')).total).toBe(1);
    expect((await search('q=zebra')).total).toBe(1);
    expect(await cacheHits()).toBe(hits + 1);
  });

  it('under concurrent writes and searches, each query after an indexed change sees it', async () => {
    let reading = true;
    // Readers keep asking both the old and the new answer, so stale entries are cached whenever they can be.
    const readers = Array.from({ length: 4 }, async () => {
      for (let n = 0; reading; n++) await search(`q=tick${n % 6}`);
    });
    try {
      for (let i = 1; i <= 3; i++) {
        // A cached "not found" for the value about to be written: it must not survive the change.
        await waitFor('the last bulk to settle', settled, (n) => n === 0);
        await search(`q=tick${i}`);
        const hits = await cacheHits();
        expect((await search(`q=tick${i}`)).total).toBe(0);
        expect(await cacheHits()).toBeGreaterThan(hits);
        await redis.set('clock', `tick${i}`);
        await waitFor(
          `tick${i} in the answer`,
          () => search(`q=tick${i}`),
          (p) => p.total === 1 && p.hits[0]!.key === 'clock',
        );
        await waitFor(
          `tick${i - 1} gone from the answer`,
          () => search(`q=tick${i - 1}`),
          (p) => p.total === 0,
        );
      }
    } finally {
      reading = false;
      await Promise.all(readers);
    }
  });

  it('refuses expensive or malformed queries and unknown indices with clear errors', async () => {
    const index = servers.index;
    expect(await get(`/search/${index}?q=*pple`)).toEqual({
      status: 400,
      body: { error: expect.stringMatching(/leading wildcards/) },
    });
    expect(await get(`/search/${index}?q=name:?pple`)).toEqual({
      status: 400,
      body: { error: expect.stringMatching(/leading wildcards/) },
    });
    expect(await get(`/search/${index}?q=${'a'.repeat(1001)}`)).toEqual({
      status: 400,
      body: { error: 'q is 1001 characters, over the limit of 1000' },
    });
    expect(await get(`/search/${index}?q=${encodeURIComponent(`content:/${'[a-z]'.repeat(21)}/`)}`)).toEqual({
      status: 400,
      body: { error: 'q: regular expressions are limited to 100 characters (got 105)' },
    });
    expect((await search(`q=${encodeURIComponent('content:/app.e/')}&filter.type=hash`)).total).toBe(1);
    expect(await get(`/search/${index}?size=101`)).toEqual({
      status: 400,
      body: { error: 'size 101 is over the maximum page size of 100' },
    });
    expect(await get(`/search/${index}?limit=5`)).toEqual({
      status: 400,
      body: { error: 'unknown parameter limit (expected q, filter.<field>, sort, size, search_after)' },
    });
    expect(await get(`/search/${index}?size=0`)).toEqual({
      status: 400,
      body: { error: 'size must be a positive integer' },
    });
    expect(await get(`/search/${index}?search_after=nope`)).toEqual({
      status: 400,
      body: { error: expect.stringMatching(/search_after must be/) },
    });
    expect(await get(`/search/${index}?sort=key:sideways`)).toEqual({
      status: 400,
      body: { error: expect.stringMatching(/^sort:/) },
    });
    expect(await get(`/search/${index}?q=(unclosed`)).toEqual({
      status: 400,
      body: { error: expect.stringMatching(/^Elasticsearch refused the query/) },
    });
    expect(await get(`/search/not-synced-${index}`)).toEqual({
      status: 404,
      body: { error: `index "not-synced-${index}" is not one this service syncs` },
    });
    expect((await get(`/doc/not-synced-${index}/x`)).status).toBe(404);
  });

  it('answers the JSON body form with the restricted query DSL, cached like the GET form', async () => {
    await waitFor('the last bulk to settle', settled, (n) => n === 0);
    const body = {
      query: {
        bool: {
          must: [{ match: { content: 'apple' } }],
          filter: [{ term: { type: 'string' } }, { prefix: { key: 'fruit:1' } }],
        },
      },
      sort: 'key:desc',
      size: 5,
    };
    const first = await post(body);
    expect(first.status).toBe(200);
    const page = first.body as Page;
    expect(page.total).toBe(10);
    expect(page.hits.map((h) => h.key)).toEqual(['fruit:19', 'fruit:18', 'fruit:17', 'fruit:16', 'fruit:15']);
    expect(first.cache).toBe('miss');
    const second = await post(body);
    expect(second.cache).toBe('hit');
    const hits = await cacheHits();
    // The same query with its keys in another order is the same cache entry.
    const reordered = await post({
      size: 5,
      sort: 'key:desc',
      query: {
        bool: {
          filter: [{ term: { type: 'string' } }, { prefix: { key: 'fruit:1' } }],
          must: [{ match: { content: 'apple' } }],
        },
      },
    });
    expect(await cacheHits()).toBe(hits + 1);
    expect(second.body).toEqual(page);
    expect(reordered.body).toEqual(page);
    const rest = await post({ ...body, search_after: page.next });
    expect((rest.body as Page).hits.map((h) => h.key)).toEqual([
      'fruit:14',
      'fruit:13',
      'fruit:12',
      'fruit:11',
      'fruit:10',
    ]);

    expect(
      await post({
        query: { bool: { must: [{ match: { content: 'apple' } }, { script: { script: { source: 'true' } } }] } },
      }),
    ).toEqual({
      status: 400,
      body: { error: 'query.bool.must[1].script: not allowed' },
    });
    expect(await post({ query: { wildcard: { key: '*ruit' } } })).toEqual({
      status: 400,
      body: { error: 'query.wildcard.key: leading wildcards are not allowed: they scan every term of the index' },
    });
    let deep: unknown = { match: { content: 'apple' } };
    for (let i = 0; i < 6; i++) deep = { bool: { filter: deep } };
    expect(await post({ query: deep })).toEqual({
      status: 400,
      body: { error: `query${'.bool.filter'.repeat(5)}: nested deeper than 5 levels` },
    });
    expect(await post({ query: { fuzzy_everything: { value: 'apple' } } })).toEqual({
      status: 400,
      body: { error: 'query.fuzzy_everything: not allowed' },
    });
    expect(await post({ query: { match_all: {} }, from: 10 })).toEqual({
      status: 400,
      body: { error: 'from: unknown field (expected query, filter, sort, size, search_after)' },
    });
  });

  it('serves /doc from Redis, the source of truth, and 404 once the key is gone', async () => {
    await redis.set('fruit:00', JSON.stringify({ name: 'pear' }));
    // Straight from Redis: no need to wait for the change to be indexed.
    expect(await get(`/doc/${servers.index}/fruit:00`)).toEqual({
      status: 200,
      body: {
        index: servers.index,
        id: 'fruit:00',
        doc: { key: 'fruit:00', db: 0, type: 'string', value: { name: 'pear' }, content: 'pear' },
      },
    });
    await redis.del('fruit:00');
    expect(await get(`/doc/${servers.index}/fruit:00`)).toEqual({
      status: 404,
      body: { error: `no key maps to ${servers.index}/fruit:00` },
    });
  });

  it('serves /doc for ids a rule templates, through the key the indexed document names', async () => {
    const orders = `${servers.index}-orders`;
    expect(await get(`/doc/${orders}/o-7`)).toEqual({
      status: 200,
      body: {
        index: orders,
        id: 'o-7',
        doc: { key: 'order:7', db: 0, type: 'hash', value: { item: 'plum', qty: '3' } },
      },
    });
    const page = await waitFor(
      'the order to be searchable',
      () => get(`/search/${orders}?q=plum`),
      (r) => (r.body as Page).total === 1,
    );
    expect((page.body as Page).hits[0]).toMatchObject({ id: 'o-7', key: 'order:7' });
    expect(await get(`/doc/${orders}/o-8`)).toEqual({ status: 404, body: { error: `no key maps to ${orders}/o-8` } });
    // The order is not in the default index: its id there does not exist.
    expect((await get(`/doc/${servers.index}/o-7`)).status).toBe(404);
  });

  it('requires the configured credentials, and `serve` answers only search and /healthz', async () => {
    const port = await getFreePort();
    const cli = spawnCli(testConfigInput(servers, { http: { port, authToken: 'search-token' } }), ['serve']);
    const url = `http://127.0.0.1:${port}`;
    try {
      await waitFor(
        'serve to listen',
        () =>
          fetch(`${url}/healthz`).then(
            (r) => r.status,
            () => 0,
          ),
        (s) => s === 200,
      );
      const denied = await fetch(`${url}/search/${servers.index}?q=apple`);
      expect(denied.status).toBe(401);
      const allowed = await fetch(`${url}/search/${servers.index}?q=apple&filter.type=hash`, {
        headers: bearer('search-token'),
      });
      expect(allowed.status).toBe(200);
      expect(((await allowed.json()) as Page).hits.map((h) => h.key)).toEqual(['basket:1']);
      expect((await fetch(`${url}/doc/${servers.index}/basket:1`)).status).toBe(401);
      expect((await fetch(`${url}/doc/${servers.index}/basket:1`, { headers: bearer('search-token') })).status).toBe(
        200,
      );
      expect((await fetch(`${url}/queues`, { headers: bearer('search-token') })).status).toBe(404);
    } finally {
      cli.kill('SIGTERM');
      expect(await exited(cli)).toBe(0);
    }
  });
});
