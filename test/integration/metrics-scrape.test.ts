import { Redis } from 'ioredis';
import { promtool, seriesIn, shippedExpressions } from '../support/observability';
import { startPipeline, startServers, testConfigInput, waitInSync, type TestServers } from '../support/pipeline';
import { getFreePort } from '../support/ports';

/** A real scrape of a running pipeline: Prometheus's own linter, and the series the shipped views read. */
describe('the /metrics scrape', () => {
  let servers: TestServers;

  beforeAll(async () => {
    servers = await startServers('metrics-scrape');
  });

  afterAll(async () => {
    await servers.stop();
  });

  it('passes promtool check metrics and carries every series the alerts and dashboard read', async () => {
    const port = await getFreePort();
    const pipeline = await startPipeline(testConfigInput(servers, { http: { port } }));
    const redis = new Redis(servers.source.url);
    try {
      await pipeline.service.producer!.idle();
      await redis.set('scrape:1', '{"a":1}');
      await redis.set('scrape:2', 'text');
      await waitInSync(pipeline.ctx);
      const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();

      const lint = promtool(['check', 'metrics'], text);
      expect(lint).toEqual({ status: 0, output: '' });

      // Series a healthy pipeline has exported by now; counters of rare events (refusals,
      // failures, gaps) appear at their first event and are checked against the registry in
      // the unit test instead.
      const exported = new Set([...text.matchAll(/^(redis_es_sync_\w+?)(\{| )/gm)].map((m) => m[1]));
      const read = new Set(shippedExpressions().flatMap(({ expr }) => seriesIn(expr).map((s) => s.name)));
      const present = [...read].filter((name) => exported.has(name));
      for (const name of [
        'redis_es_sync_queue_jobs',
        'redis_es_sync_queue_paused',
        'redis_es_sync_jobs_completed_total',
        'redis_es_sync_capture_to_indexed_seconds_bucket',
        'redis_es_sync_bulk_request_duration_seconds_count',
        'redis_es_sync_dependency_up',
      ])
        expect(present).toContain(name);
    } finally {
      redis.disconnect();
      await pipeline.stop();
    }
  });
});
