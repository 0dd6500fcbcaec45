import { Redis } from 'ioredis';
import type { ConfigInput } from '../../producers/capture/registry';
import { FailureStore } from '../../shared/core/failure-store';
import { unfinishedJobs } from '../../shared/core/queue';
import {
  exited,
  getDoc,
  spawnCli,
  startPipeline,
  startServers,
  testConfigInput,
  waitFor,
  waitInSync,
  verifyNow,
  type TestPipeline,
  type TestServers,
} from '../support/pipeline';
import { metricValue } from '../support/http';
import { getFreePort } from '../support/ports';
import { testEs } from '../support/raw-es';

/** Exit code of a usage error (docs/operations.md, Exit codes). */
const USAGE_EXIT = 64;

/** Refused keys keep Elasticsearch's reason in the failure store; failed jobs their error; replay, the dashboard's retry, resync and verify --repair bring things back. */
describe('replay, resync and verify --repair', () => {
  let servers: TestServers;
  let redis: Redis;
  let pipeline: TestPipeline;
  let input: ConfigInput;
  let port: number;

  const cli = async (args: string[]): Promise<{ code: number | null; output: string }> => {
    const child = spawnCli(input, args);
    const code = await exited(child);
    return { code, output: child.output() };
  };
  let store: FailureStore;
  const refusedKeys = async (): Promise<string[]> => (await store.matching({})).map((r) => r.key).sort();
  const blockWrites = (blocked: boolean): Promise<unknown> =>
    testEs().indices.putSettings({ index: servers.index, settings: { 'index.blocks.write': blocked } });

  beforeAll(async () => {
    servers = await startServers('replay');
    redis = new Redis(servers.source.url);
    port = await getFreePort();
    input = testConfigInput(servers, {
      mapping: { defaultIndex: servers.index, rules: [{ match: 'json:*', json: true }] },
      http: { port },
      // One key per job, so each failed job stands for exactly one of the test's keys.
      producer: { enqueueBatch: 1 },
      // A job that fails (the dashboard test) goes to failed at once.
      queue: { url: servers.queue.url, attempts: 1 },
    });
    pipeline = await startPipeline(input);
    store = new FailureStore(pipeline.ctx.queueRedis, pipeline.ctx.config.queue.prefix);
    await pipeline.service.producer!.idle();
  });

  afterAll(async () => {
    await pipeline.stop();
    redis.disconnect();
    await servers.stop();
  });

  it('keeps the reason of refused keys and replays them by reason, key pattern and time', async () => {
    const before = new Date(Date.now() - 1000).toISOString();
    await blockWrites(true);
    await redis.set('a:1', 'one');
    await redis.set('a:2', 'two');
    await redis.set('b:1', 'three');
    // Refused by its rule (json: true), whatever Elasticsearch's state.
    await redis.set('json:1', 'not json');
    await waitFor('four refused keys', refusedKeys, (k) => k.length === 4, 20000);
    const reasons = Object.fromEntries((await store.matching({})).map((r) => [r.key, r]));
    expect(reasons['a:1']!.reason).toMatch(
      /^403 cluster_block_exception: index \[.*\] blocked by: \[FORBIDDEN\/8\/index write \(api\)\]/,
    );
    expect(reasons['a:1']!.reasonClass).toBe('cluster_block_exception');
    expect(reasons['json:1']!.reason).toMatch(/value is not valid JSON/);

    // The dashboard's view of the store: counts by class, most recent first, filtered like replay.
    const listed = (await (await fetch(`http://127.0.0.1:${port}/failures?pattern=a:*`)).json()) as {
      count: number;
      byClass: Record<string, number>;
      records: { key: string; attempts: number; lastSeen: string }[];
    };
    expect(listed.count).toBe(2);
    expect(listed.byClass).toEqual({ cluster_block_exception: 2 });
    expect(listed.records.map((r) => r.key).sort()).toEqual(['a:1', 'a:2']);
    expect(listed.records[0]!.lastSeen).toMatch(/^\d{4}-\d\d-\d\dT/);
    expect((await fetch(`http://127.0.0.1:${port}/failures?since=whenever`)).status).toBe(400);
    // In a browser: a page of its own.
    const page = await fetch(`http://127.0.0.1:${port}/failures?pattern=a:*`, {
      headers: { accept: 'text/html,application/xhtml+xml' },
    });
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    const html = await page.text();
    expect(html).toContain('Refused keys: 2');
    expect(html).toContain('<td>a:1</td>');

    const dry = await cli(['replay', '--reason', 'cluster_block', '--dry-run']);
    expect(dry.code).toBe(0);
    expect(dry.output).toContain('would replay 3 of 4 refused keys and 0 of 0 failed jobs');
    expect(dry.output).toMatch(/^0\ta:1\t\S+\tcluster_block_exception\t1\t.*403 cluster_block_exception/m);
    expect(await refusedKeys()).toEqual(['a:1', 'a:2', 'b:1', 'json:1']);

    await blockWrites(false);
    const byPattern = await cli(['replay', '--reason', 'cluster_block', '--pattern', 'a:*']);
    expect(byPattern.output).toContain('replayed 2 of 4 refused keys');
    await waitFor(
      'a:1 and a:2 indexed',
      async () => [await getDoc(pipeline.ctx, servers.index, 'a:1'), await getDoc(pipeline.ctx, servers.index, 'a:2')],
      (d) => d.every((x) => x?.value !== undefined),
      20000,
    );
    await waitFor('a:1 and a:2 to leave the store', refusedKeys, (k) => k.join() === 'b:1,json:1', 20000);

    const tooEarly = await cli(['replay', '--until', before]);
    expect(tooEarly.output).toContain('replayed 0 of 2 refused keys');
    const byTime = await cli(['replay', '--since', before, '--reason', '403']);
    expect(byTime.output).toContain('replayed 1 of 2 refused keys');
    await waitFor(
      'b:1 indexed',
      () => getDoc(pipeline.ctx, servers.index, 'b:1'),
      (d) => d?.value === 'three',
      20000,
    );
    await waitFor('b:1 to leave the store', refusedKeys, (k) => k.join() === 'json:1', 20000);

    // Refusals are counted per key and class; no job failed for them.
    const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    expect(metricValue(metrics, 'redis_es_sync_keys_refused_total', { class: 'cluster_block_exception' })).toBe(3);
    expect(metricValue(metrics, 'redis_es_sync_keys_refused_total', { class: 'not_json' })).toBe(1);
    expect(metricValue(metrics, 'redis_es_sync_queue_jobs', { state: 'failed' })).toBe(0);

    const bad = await cli(['replay', '--since', 'yesterday-ish']);
    expect(bad.code).toBe(USAGE_EXIT);
    expect(bad.output).toContain('--since: is not a date/time');
  });

  it("retries a failed job from the dashboard's retry button just as replay does", async () => {
    const queue = pipeline.ctx.queues().partitions[0]!;
    // The queue Redis refuses the job's failure-store update (WRONGTYPE): the job fails.
    await pipeline.ctx.queueRedis.rename(store.key, `${store.key}:aside`);
    await pipeline.ctx.queueRedis.set(store.key, 'not a hash');
    await redis.set('c:1', 'from the dashboard');
    const job = await waitFor(
      'c:1 to fail',
      async () => (await queue.getFailed()).find((j) => j.data.keys[0] === 'c:1'),
      (j) => j !== undefined,
      20000,
    );
    expect(job!.failedReason).toMatch(/WRONGTYPE/);
    await pipeline.ctx.queueRedis.rename(`${store.key}:aside`, store.key);
    // What bull-board's "Retry" button sends.
    const res = await fetch(
      `http://127.0.0.1:${port}/queues/api/queues/changes/${encodeURIComponent(job!.id!)}/retry`,
      { method: 'PUT' },
    );
    expect(res.status).toBe(204);
    await waitFor(
      'the retried job to complete',
      () => queue.getFailedCount(),
      (n) => n === 0,
      20000,
    );
    expect((await getDoc(pipeline.ctx, servers.index, 'c:1'))?.value).toBe('from the dashboard');
    expect(await refusedKeys()).toEqual(['json:1']);
  });

  it('verify --repair enqueues what is missing, stale or extra, and a worker fixes it', async () => {
    // json:1 stays refused until its value is fixed; then the live change indexes it.
    await redis.set('json:1', '{"fixed":true}');
    await waitInSync(pipeline.ctx);
    await waitFor('json:1 to leave the store', refusedKeys, (k) => k.length === 0, 20000);
    const es = testEs();
    // Behind the tool's back, in Elasticsearch only: no change event will follow these.
    await es.index({
      index: servers.index,
      id: 'a:1',
      document: { key: 'a:1', db: 0, type: 'string', value: 'tampered', content: 'tampered' },
    });
    await es.delete({ index: servers.index, id: 'a:2' });
    await es.index({
      index: servers.index,
      id: 'ghost',
      document: { key: 'ghost', db: 0, type: 'string', value: 'boo', content: 'boo' },
    });

    const repaired = await cli(['verify', '--settle-ms', '0', '--repair']);
    expect(repaired.code).toBe(1);
    expect(repaired.output).toContain('missing 1, stale 1, extra 1');
    expect(repaired.output).toContain('repair: enqueued 3 keys');
    const report = await waitInSync(pipeline.ctx);
    expect(report.checked).toBe(5);
    expect((await getDoc(pipeline.ctx, servers.index, 'a:1'))?.value).toBe('one');
    expect(await getDoc(pipeline.ctx, servers.index, 'ghost')).toBeUndefined();

    const clean = await cli(['verify', '--settle-ms', '0', '--repair']);
    expect(clean.code).toBe(0);
    expect(clean.output).not.toContain('repair:');
  });

  it('resync --pattern re-enqueues only the keys matching the pattern', async () => {
    const es = testEs();
    await es.delete({ index: servers.index, id: 'a:1' });
    await es.delete({ index: servers.index, id: 'b:1' });
    const resync = await cli(['--log-level', 'info', 'resync', '--pattern', 'b:*', '--wait']);
    expect(resync.code).toBe(0);
    expect(resync.output).toMatch(/"keys":1,.*"msg":"resync enqueued"/);
    await waitFor(
      'queue drained',
      () => unfinishedJobs(pipeline.ctx.queues().partitions[0]!),
      (n) => n === 0,
      20000,
    );
    expect((await getDoc(pipeline.ctx, servers.index, 'b:1'))?.value).toBe('three');
    expect(await getDoc(pipeline.ctx, servers.index, 'a:1')).toBeUndefined();
    const report = await verifyNow(pipeline.ctx);
    expect(report.missing).toEqual(['a:1']);
  });
});
