import { Redis } from 'ioredis';
import { uniqueIndex } from '../support/elasticsearch';
import { startPipeline, testConfigInput, waitInSync, type TestPipeline, type TestServers } from '../support/pipeline';
import { getFreePort } from '../support/ports';
import { startRedis, type RedisServerHandle } from '../support/redis-server';
import { testEs } from '../support/raw-es';

/** The search cache cannot take the memory the queue needs: capped per entry and in total, or kept in a Redis of its own. */
describe('a flooded search cache', () => {
  let source: RedisServerHandle;
  let queue: RedisServerHandle;
  let cacheServer: RedisServerHandle;
  let redis: Redis;
  let queueAdmin: Redis;
  let cacheAdmin: Redis;
  const MAXMEMORY = 24 * 1024 * 1024;

  beforeAll(async () => {
    [source, queue, cacheServer] = await Promise.all([
      startRedis({ notifyKeyspaceEvents: 'KEA' }),
      // As docs/operations.md asks of a queue Redis: noeviction, so a full memory refuses writes (enqueues) instead of losing jobs.
      startRedis({ args: ['--maxmemory', String(MAXMEMORY), '--maxmemory-policy', 'noeviction'] }),
      startRedis({ args: ['--maxmemory', String(8 * 1024 * 1024), '--maxmemory-policy', 'allkeys-lru'] }),
    ]);
    redis = new Redis(source.url);
    queueAdmin = new Redis(queue.url);
    cacheAdmin = new Redis(cacheServer.url);
    // 300 documents of ~2 KB: a page of 100 is ~200 KB of JSON, a few hundred distinct pages would be tens of MB.
    const words = Array.from({ length: 300 }, (_, i) => `apple word${i}`).join(' ');
    const pipe = redis.pipeline();
    for (let i = 0; i < 300; i++) pipe.hset(`doc:${String(i).padStart(3, '0')}`, { text: `${i} ${words}` });
    await pipe.exec();
  });

  afterAll(async () => {
    redis.disconnect();
    queueAdmin.disconnect();
    if (cacheAdmin.status !== 'end') cacheAdmin.disconnect();
    await Promise.all([source.stop(), queue.stop(), cacheServer.stop()]);
  });

  const servers = (index: string): TestServers => ({ source, queue, index, stop: async () => undefined });

  async function flood(base: string, index: string, requests: number): Promise<void> {
    const urls: string[] = [];
    for (let i = 0; i < requests; i++) {
      const size = 51 + (i % 50);
      const sort = ['key:asc', 'key:desc', 'db:asc,key:asc', 'type:asc,key:desc'][Math.floor(i / 50) % 4];
      urls.push(
        `${base}/search/${index}?q=${encodeURIComponent(`apple word${i}`)}&size=${size}&sort=${sort}&filter.type=hash`,
      );
    }
    for (let i = 0; i < urls.length; i += 8) {
      const answers = await Promise.all(urls.slice(i, i + 8).map(async (u) => (await fetch(u)).status));
      expect(answers.filter((s) => s !== 200)).toEqual([]);
    }
  }

  async function searchKeysIn(admin: Redis): Promise<number> {
    let n = 0;
    let cursor = '0';
    do {
      const [next, keys] = await admin.scan(cursor, 'MATCH', '*:search:*', 'COUNT', 1000);
      n += keys.length;
      cursor = next;
    } while (cursor !== '0');
    return n;
  }

  it('in the queue Redis: stays within its total cap while indexing goes on', async () => {
    const index = uniqueIndex('cache-flood');
    const port = await getFreePort();
    const cap = 2 * 1024 * 1024;
    const input = testConfigInput(servers(index), {
      http: { port },
      search: {
        cacheTtlMs: 600_000,
        refreshWindowMs: 0,
        maxPageSize: 100,
        cache: { maxEntryBytes: 512 * 1024, maxTotalBytes: cap },
      },
    });
    let pipeline: TestPipeline | undefined;
    try {
      pipeline = await startPipeline(input);
      await waitInSync(pipeline.ctx, 120_000);
      // Searches see what a refresh made visible: without it the answers could be empty, and small.
      await testEs().indices.refresh({ index });
      const base = `http://127.0.0.1:${port}`;
      await flood(base, index, 200);
      const counted = Number((await queueAdmin.get('redis-es-sync:search-cache:bytes')) ?? 0);
      expect(counted).toBeGreaterThan(0);
      expect(counted).toBeLessThanOrEqual(cap);
      // The flood filled it: without the cap it would have held every answer (~60 MB, past maxmemory).
      expect(counted).toBeGreaterThan(cap - 512 * 1024);
      let stored = 0;
      for (const key of await queueAdmin.keys('redis-es-sync:search:*')) stored += await queueAdmin.strlen(key);
      expect(stored).toBe(counted);
      // The producer and the workers still have the memory they need.
      const pipe = redis.pipeline();
      for (let i = 0; i < 500; i++) pipe.set(`live:${i}`, `value ${i}`);
      await pipe.exec();
      const report = await waitInSync(pipeline.ctx, 120_000);
      expect(report.checked).toBe(800);
      const used = Number(/used_memory:(\d+)/.exec(await queueAdmin.info('memory'))?.[1]);
      expect(used).toBeLessThan(MAXMEMORY / 2);
      // A cache hit still works.
      const again = await fetch(`${base}/search/${index}?q=apple&size=5`);
      expect(again.status).toBe(200);
    } finally {
      await pipeline?.stop();
    }
  });

  it('in a Redis of its own (search.cache.url): nothing of the cache lands in the queue Redis', async () => {
    const index = uniqueIndex('cache-own');
    const port = await getFreePort();
    const input = testConfigInput(servers(index), {
      http: { port },
      search: {
        cacheTtlMs: 600_000,
        refreshWindowMs: 0,
        maxPageSize: 100,
        cache: { url: cacheServer.url, maxEntryBytes: 512 * 1024, maxTotalBytes: 4 * 1024 * 1024 },
      },
    });
    await queueAdmin.flushall();
    let pipeline: TestPipeline | undefined;
    try {
      pipeline = await startPipeline(input);
      await waitInSync(pipeline.ctx, 120_000);
      await testEs().indices.refresh({ index });
      await flood(`http://127.0.0.1:${port}`, index, 100);
      expect(await searchKeysIn(queueAdmin)).toBe(0);
      expect(await searchKeysIn(cacheAdmin)).toBeGreaterThan(0);
      expect(Number(await cacheAdmin.get('redis-es-sync:search-cache:bytes'))).toBeLessThanOrEqual(4 * 1024 * 1024);
      // The cache Redis gone: searches are answered from Elasticsearch, not refused.
      cacheAdmin.disconnect();
      await cacheServer.stop();
      const res = await fetch(`http://127.0.0.1:${port}/search/${index}?q=apple&size=5`);
      expect(res.status).toBe(200);
      expect(res.headers.get('x-cache')).toBe('miss');
    } finally {
      await pipeline?.stop();
    }
  });
});
