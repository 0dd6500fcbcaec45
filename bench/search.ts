import { settlingKey } from '../features/search/generation';
import { getFreePort } from '../test/support/ports';
import { seededRandom } from '../test/support/random';
import { seedKeys } from './data';
import { startPipelineProcesses } from './live';
import {
  benchConfig,
  connect,
  itemAt,
  percentile,
  resetServers,
  sleep,
  startCli,
  type BenchEnv,
  type CliProcess,
  type Connections,
} from './support';

const INDEX = 'bench-search';
const TERMS = [
  'red',
  'fast',
  'quiet',
  'bright',
  'solid',
  'light',
  'warm',
  'fresh',
  'smart',
  'bold',
  'Lisbon',
  'Oslo',
  'Lagos',
  'Lima',
  'Pune',
  'Osaka',
  'Quito',
  'Tunis',
  'customer',
  'product',
  'post',
  'shipped',
  'likes',
];
const TYPES = [undefined, 'hash', 'string', 'list', 'set', 'zset'];
const SORTS = [undefined, 'key:asc', 'key:desc'];
const SIZES = [10, 20];

export interface SearchOptions {
  docs: number;
  /** Distinct queries in the mix; their popularity follows Zipf's law (s = 1). */
  queries: number;
  concurrency: number;
  durationMs: number;
}

export interface SearchRun {
  mode: 'uncached' | 'cached';
  cacheTtlMs: number;
  requests: number;
  perSecond: number;
  p50: number;
  p95: number;
  p99: number;
  hitRatio: number;
}

export interface SearchResult {
  docs: number;
  queries: number;
  concurrency: number;
  durationMs: number;
  runs: SearchRun[];
}

/** One request of the mix: GET parameters, or a POST body with the query DSL. */
interface MixQuery {
  get?: Record<string, string>;
  post?: Record<string, unknown>;
  /** Also fetch the next page (search_after) after this one. */
  nextPage: boolean;
}

/**
 * Searches under a fixed concurrency against `serve`, over documents the pipeline indexed:
 * once with the cache effectively off (1 ms TTL), once with it on. Latency is the HTTP round
 * trip; the hit ratio comes from the `x-cache` header of each answer.
 */
export async function searchScenario(env: BenchEnv, opts: SearchOptions): Promise<SearchResult> {
  const c = connect(env);
  try {
    await resetServers(c, `${INDEX}*`);
    await seed(env, c, opts.docs);
    const mix = queryMix(opts.queries);
    const runs: SearchRun[] = [];
    for (const [mode, cacheTtlMs] of [
      ['uncached', 1],
      ['cached', 600_000],
    ] as const) {
      runs.push(await measure(env, mix, mode, cacheTtlMs, opts));
    }
    return { docs: opts.docs, queries: mix.length, concurrency: opts.concurrency, durationMs: opts.durationMs, runs };
  } finally {
    await c.close();
  }
}

/** Writes the documents through the real pipeline and waits until all are searchable and cacheable. */
async function seed(env: BenchEnv, c: Connections, docs: number): Promise<void> {
  const procs = await startPipelineProcesses(env, INDEX, 1);
  try {
    await seedKeys(c.source, 0, docs);
    const deadline = performance.now() + 300_000;
    for (;;) {
      if (performance.now() > deadline) throw new Error(`${docs} documents not indexed in time`);
      if ((await indexedCount(c)) >= docs) break;
      await sleep(200);
    }
    // Answers are not cached while the last bulk may still be invisible to searches.
    while ((await c.queueRedis.exists(settlingKey('redis-es-sync', INDEX))) === 1) await sleep(100);
  } finally {
    await Promise.all(procs.map((p) => p.stop()));
  }
}

async function indexedCount(c: Connections): Promise<number> {
  if (!(await c.es.indices.exists({ index: INDEX }))) return 0;
  await c.es.indices.refresh({ index: INDEX });
  return (await c.es.count({ index: INDEX })).count;
}

/** `count` distinct queries, deterministic: terms × type filters × sorts × page sizes, a quarter as DSL bodies. */
function queryMix(count: number): MixQuery[] {
  const all: MixQuery[] = [];
  for (const term of TERMS)
    for (const type of TYPES)
      for (const sort of SORTS)
        for (const size of SIZES) {
          const n = all.length;
          const nextPage = n % 3 === 0;
          if (n % 4 === 0) {
            const filter = type ? [{ term: { type } }] : [];
            all.push({
              post: {
                query: { bool: { must: [{ match: { content: term } }], filter } },
                size,
                ...(sort ? { sort } : {}),
              },
              nextPage,
            });
          } else {
            all.push({
              get: { q: term, size: String(size), ...(type ? { 'filter.type': type } : {}), ...(sort ? { sort } : {}) },
              nextPage,
            });
          }
        }
  const random = seededRandom(42);
  for (let i = all.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [all[i], all[j]] = [itemAt(all, j), itemAt(all, i)];
  }
  return all.slice(0, Math.min(count, all.length));
}

async function measure(
  env: BenchEnv,
  mix: readonly MixQuery[],
  mode: SearchRun['mode'],
  cacheTtlMs: number,
  opts: SearchOptions,
): Promise<SearchRun> {
  const port = await getFreePort();
  // All the bench clients share one address: the per-client limit must not be what it measures.
  const serve: CliProcess = startCli(
    benchConfig(env, INDEX, {
      http: { port },
      search: { cacheTtlMs, maxConcurrentPerClient: opts.concurrency * 2, maxConcurrent: opts.concurrency * 2 },
    }),
    ['serve'],
  );
  try {
    await waitUntilUp(serve, `http://127.0.0.1:${port}/healthz`);
    const base = `http://127.0.0.1:${port}/search/${INDEX}`;
    const cdf = zipfCdf(mix.length);
    const random = seededRandom(7);
    const latencies: number[] = [];
    let hits = 0;
    const request = async (q: MixQuery, after?: unknown): Promise<unknown> => {
      const started = performance.now();
      const res = q.post
        ? await fetch(base, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify(after ? { ...q.post, search_after: after } : q.post),
          })
        : await fetch(
            `${base}?${new URLSearchParams(after ? { ...q.get, search_after: JSON.stringify(after) } : q.get).toString()}`,
          );
      const body = (await res.json()) as { next?: unknown; error?: string };
      latencies.push(performance.now() - started);
      if (res.status !== 200) throw new Error(`search answered ${res.status}: ${body.error ?? ''}`);
      if (res.headers.get('x-cache') === 'hit') hits++;
      return body.next;
    };
    const started = performance.now();
    const until = started + opts.durationMs;
    await Promise.all(
      Array.from({ length: opts.concurrency }, async () => {
        while (performance.now() < until) {
          const q = itemAt(mix, pick(cdf, random()));
          const next = await request(q);
          if (q.nextPage && next) await request(q, next);
        }
      }),
    );
    const seconds = (performance.now() - started) / 1000;
    latencies.sort((a, b) => a - b);
    return {
      mode,
      cacheTtlMs,
      requests: latencies.length,
      perSecond: latencies.length / seconds,
      p50: percentile(latencies, 50),
      p95: percentile(latencies, 95),
      p99: percentile(latencies, 99),
      hitRatio: latencies.length ? hits / latencies.length : 0,
    };
  } finally {
    await serve.stop();
  }
}

async function waitUntilUp(proc: CliProcess, url: string): Promise<void> {
  const deadline = performance.now() + 60_000;
  while (performance.now() < deadline) {
    if (proc.child.exitCode !== null) throw new Error(`serve exited:\n${proc.output()}`);
    const ok = await fetch(url).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) return;
    await sleep(50);
  }
  throw new Error(`serve did not answer ${url}:\n${proc.output()}`);
}

/** Cumulative probabilities of ranks 1..n under Zipf's law with s = 1. */
function zipfCdf(n: number): number[] {
  const weights = Array.from({ length: n }, (_, i) => 1 / (i + 1));
  const total = weights.reduce((a, b) => a + b, 0);
  let sum = 0;
  return weights.map((w) => (sum += w / total));
}

function pick(cdf: readonly number[], u: number): number {
  let lo = 0;
  let hi = cdf.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (itemAt(cdf, mid) < u) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
