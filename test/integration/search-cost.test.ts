import { Client } from '@elastic/elasticsearch';
import { Redis } from 'ioredis';
import { esUrl } from '../support/elasticsearch';
import { startEsGate, type EsGate } from '../support/es-gate';
import {
  startPipeline,
  startServers,
  testConfigInput,
  waitFor,
  type TestPipeline,
  type TestServers,
} from '../support/pipeline';
import { getFreePort } from '../support/ports';

/** What one client can make Elasticsearch do: bounded terms, fuzzy expansions and regexps, and a concurrency limit. */
describe('the cost of searches', () => {
  let servers: TestServers;
  let redis: Redis;
  let gate: EsGate;
  let pipeline: TestPipeline;
  let base: string;

  beforeAll(async () => {
    servers = await startServers('cost');
    redis = new Redis(servers.source.url);
    await redis.set('fruit:1', 'apple banana');
    gate = await startEsGate();
    const port = await getFreePort();
    base = `http://127.0.0.1:${port}`;
    pipeline = await startPipeline(
      testConfigInput(servers, {
        elasticsearch: { url: gate.url },
        http: { port },
        search: { cacheTtlMs: 0, maxConcurrentPerClient: 2, maxConcurrent: 3 },
        // The canary's polls are searches too: the gate would hold them beside the test's own.
        producer: { canary: { enabled: false } },
      }),
    );
    // Straight from Elasticsearch: the gate in front of it is for /search, and verify's scans do not need it.
    const direct = new Client({ node: esUrl() });
    try {
      await waitFor(
        'fruit:1 indexed',
        async () => (await direct.get({ index: servers.index, id: 'fruit:1' }, { ignore: [404] })).found,
        (f) => f,
      );
      await direct.indices.refresh({ index: servers.index });
    } finally {
      await direct.close();
    }
  });

  afterAll(async () => {
    await pipeline?.stop();
    await gate?.close();
    redis?.disconnect();
    await servers?.stop();
  });

  const post = (body: unknown): Promise<Response> =>
    fetch(`${base}/search/${servers.index}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });

  it('refuses a flood of fuzzy words and leading-wildcard regexps the same way in q and in the body', async () => {
    const words = Array.from({ length: 3000 }, (_, i) => `word${i}`).join(' ');
    const fuzzyBody = await post({ query: { match: { content: { query: words.slice(0, 900), fuzziness: 'AUTO' } } } });
    expect(fuzzyBody.status).toBe(400);
    const fuzzyQ = await fetch(
      `${base}/search/${servers.index}?q=${encodeURIComponent(
        words
          .slice(0, 900)
          .split(' ')
          .map((w) => `${w}~`)
          .join(' '),
      )}`,
    );
    expect(fuzzyQ.status).toBe(400);
    const regexQ = await fetch(`${base}/search/${servers.index}?q=${encodeURIComponent('key:/.*apple/')}`);
    const regexBody = await post({ query: { regexp: { key: '.*apple' } } });
    expect([regexQ.status, regexBody.status]).toEqual([400, 400]);
    expect(((await regexQ.json()) as { error: string }).error).toMatch(/leading wildcards/);
    expect(((await regexBody.json()) as { error: string }).error).toMatch(/leading wildcards/);
    // Within the limits, the same search answers.
    const fine = await fetch(`${base}/search/${servers.index}?q=${encodeURIComponent('aple~ banana')}`);
    expect(fine.status).toBe(200);
    expect(((await fine.json()) as { total: number }).total).toBe(1);
  });

  it('answers 429 past the searches one client may have in flight, and serves it again once they end', async () => {
    gate.hold('_search');
    const inFlight = [
      fetch(`${base}/search/${servers.index}?q=apple`),
      fetch(`${base}/search/${servers.index}?q=banana`),
    ];
    await waitFor(
      'two searches held at Elasticsearch',
      async () => gate.held(),
      (n) => n === 2,
    );
    const third = await fetch(`${base}/search/${servers.index}?q=apple`);
    expect(third.status).toBe(429);
    expect(third.headers.get('retry-after')).toBe('1');
    expect(((await third.json()) as { error: string }).error).toMatch(/search\.maxConcurrentPerClient/);
    // Another client has its own allowance, until the process's total is reached.
    const other = { authorization: 'Bearer another-client' };
    inFlight.push(fetch(`${base}/search/${servers.index}?q=apple`, { headers: other }));
    await waitFor(
      'three searches held',
      async () => gate.held(),
      (n) => n === 3,
    );
    const fourth = await fetch(`${base}/search/${servers.index}?q=apple`, { headers: other });
    expect(fourth.status).toBe(429);
    expect(((await fourth.json()) as { error: string }).error).toMatch(/search\.maxConcurrent\)/);
    gate.release();
    expect((await Promise.all(inFlight)).map((r) => r.status)).toEqual([200, 200, 200]);
    expect((await fetch(`${base}/search/${servers.index}?q=apple`)).status).toBe(200);
  });
});
