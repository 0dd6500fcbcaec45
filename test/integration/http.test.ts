import { Redis } from 'ioredis';
import { buildContext } from '../../cli/context';
import { startContextHttp } from '../../cli/service';
import { ConfigError } from '../../shared/platform/errors';
import { createLogger } from '../../shared/platform/logger';
import { startEsGate } from '../support/es-gate';
import { basic, bearer, metricValue } from '../support/http';
import {
  exited,
  loadedConfig,
  spawnCli,
  startPipeline,
  startServers,
  testConfigInput,
  waitFor,
  waitInSync,
  type TestServers,
} from '../support/pipeline';
import { getFreePort } from '../support/ports';

/** The operator's HTTP surface on real servers: metrics after traffic, probes, auth. */
describe('the HTTP surface', () => {
  let servers: TestServers;
  let redis: Redis;

  beforeAll(async () => {
    servers = await startServers('http');
    redis = new Redis(servers.source.url);
  });

  afterAll(async () => {
    redis.disconnect();
    await servers.stop();
  });

  it('counts captured changes, jobs and bulks in /metrics, and answers the probes', async () => {
    const port = await getFreePort();
    // Exact counts of captured changes: no heartbeat writes among them.
    const pipeline = await startPipeline(
      testConfigInput(servers, { http: { port }, producer: { canary: { enabled: false } } }),
    );
    const base = `http://127.0.0.1:${port}`;
    try {
      await pipeline.service.producer!.idle();
      const pipe = redis.pipeline();
      for (let i = 0; i < 50; i++) pipe.set(`m:${i}`, JSON.stringify({ n: i }));
      await pipe.exec();
      await waitInSync(pipeline.ctx);

      const scrape = async (): Promise<string> => (await fetch(`${base}/metrics`)).text();
      const text = await waitFor(
        'the last jobs counted',
        scrape,
        (t) => (metricValue(t, 'redis_es_sync_jobs_completed_total') ?? 0) >= 1,
      );
      expect(metricValue(text, 'redis_es_sync_changes_captured_total', { mode: 'notifications' })).toBe(50);
      const enqueued = metricValue(text, 'redis_es_sync_jobs_enqueued_total', { src: 'notification' }) ?? 0;
      // Changes to one key may fold into one job; never more jobs than changes.
      expect(enqueued).toBeGreaterThanOrEqual(1);
      expect(enqueued).toBeLessThanOrEqual(50);
      expect(metricValue(text, 'redis_es_sync_jobs_failed_total')).toBe(0);
      const docs = metricValue(text, 'redis_es_sync_bulk_documents_sum') ?? 0;
      expect(docs).toBeGreaterThanOrEqual(50);
      expect(metricValue(text, 'redis_es_sync_bulk_documents_count')).toBeGreaterThanOrEqual(1);
      expect(
        metricValue(text, 'redis_es_sync_bulk_request_duration_seconds_count', { outcome: 'ok' }),
      ).toBeGreaterThanOrEqual(1);
      expect(
        metricValue(text, 'redis_es_sync_capture_to_indexed_seconds_count', { src: 'notification' }),
      ).toBeGreaterThanOrEqual(1);
      expect(metricValue(text, 'redis_es_sync_reconciliations_total')).toBe(1);
      expect(metricValue(text, 'redis_es_sync_reconciliation_gaps_total')).toBe(0);
      expect(metricValue(text, 'redis_es_sync_queue_jobs', { state: 'failed' })).toBe(0);
      expect(metricValue(text, 'redis_es_sync_queue_jobs', { state: 'waiting' })).toBeDefined();
      expect(metricValue(text, 'process_resident_memory_bytes')).toBeGreaterThan(0);

      const health = await fetch(`${base}/healthz`);
      expect(health.status).toBe(200);
      const ready = await fetch(`${base}/readyz`);
      expect(ready.status).toBe(200);
      expect(await ready.json()).toEqual({
        status: 'ready',
        checks: { 'source-redis': 'ok', 'queue-redis': 'ok', elasticsearch: 'ok', queue: 'ok' },
      });
    } finally {
      await pipeline.stop();
    }
  });

  it('asks for the bearer token everywhere but on the probes', async () => {
    const port = await getFreePort();
    const pipeline = await startPipeline(testConfigInput(servers, { http: { port, authToken: 'sesame-token' } }), {
      producer: false,
      worker: false,
    });
    const base = `http://127.0.0.1:${port}`;
    try {
      for (const path of ['/metrics', '/queues', '/queues/api/queues']) {
        const denied = await fetch(`${base}${path}`);
        expect({ path, status: denied.status }).toEqual({ path, status: 401 });
        expect(denied.headers.get('www-authenticate')).toMatch(/^Bearer/);
        expect((await fetch(`${base}${path}`, { headers: bearer('wrong-token') })).status).toBe(401);
        expect((await fetch(`${base}${path}`, { headers: bearer('sesame-token') })).status).toBe(200);
      }
      const queues = (await (await fetch(`${base}/queues/api/queues`, { headers: bearer('sesame-token') })).json()) as {
        queues: { name: string }[];
      };
      expect(queues.queues.map((q) => q.name)).toEqual(['changes']);
      expect((await fetch(`${base}/healthz`)).status).toBe(200);
      expect((await fetch(`${base}/readyz`)).status).toBe(200);
    } finally {
      await pipeline.stop();
    }
  });

  it('asks browsers for basic credentials when they are configured', async () => {
    const port = await getFreePort();
    const http = { port, basicAuth: { username: 'ops', password: 'pa55word' } };
    const pipeline = await startPipeline(testConfigInput(servers, { http }), { producer: false, worker: false });
    const base = `http://127.0.0.1:${port}`;
    try {
      const denied = await fetch(`${base}/queues`);
      expect(denied.status).toBe(401);
      expect(denied.headers.get('www-authenticate')).toMatch(/^Basic realm=/);
      expect((await fetch(`${base}/queues`, { headers: basic('ops', 'wrong') })).status).toBe(401);
      expect((await fetch(`${base}/queues`, { headers: basic('nobody', 'pa55word') })).status).toBe(401);
      const page = await fetch(`${base}/queues`, { headers: basic('ops', 'pa55word') });
      expect(page.status).toBe(200);
      expect(await page.text()).toContain('redis-es-sync');
    } finally {
      await pipeline.stop();
    }
  });

  it('refuses to serve beyond loopback without credentials', async () => {
    const ctx = buildContext(
      loadedConfig(testConfigInput(servers, { http: { port: await getFreePort(), host: '0.0.0.0' } })),
      createLogger('silent'),
    );
    try {
      const err = await startContextHttp(ctx, ctx.config.http.port).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).issues.map((i) => i.field)).toEqual(['http.host']);
    } finally {
      await ctx.close();
    }
    const cli = spawnCli(testConfigInput(servers), ['--http-host', '0.0.0.0', 'dashboard']);
    expect(await exited(cli)).toBe(2);
    expect(cli.output()).toMatch(
      /http\.host: serving on non-loopback host 0\.0\.0\.0 needs credentials: http\.search, http\.viewer, http\.operator/,
    );
  });

  it('is not ready while Elasticsearch is unreachable', async () => {
    const closed = await getFreePort();
    const input = testConfigInput(servers, { elasticsearch: { url: `http://127.0.0.1:${closed}` } });
    const ctx = buildContext(loadedConfig(input), createLogger('silent'));
    const http = await startContextHttp(ctx, await getFreePort());
    try {
      const ready = await fetch(`${http.url}/readyz`);
      expect(ready.status).toBe(503);
      expect(await ready.json()).toEqual({
        status: 'unavailable',
        checks: { 'source-redis': 'ok', 'queue-redis': 'ok', elasticsearch: 'down' },
      });
      expect((await fetch(`${http.url}/healthz`)).status).toBe(200);
    } finally {
      await http.close();
      await ctx.close();
    }
  });

  it('answers 503 on /readyz while draining, then closes', async () => {
    const gate = await startEsGate();
    const port = await getFreePort();
    const base = `http://127.0.0.1:${port}`;
    const pipeline = await startPipeline(
      testConfigInput(servers, { elasticsearch: { url: gate.url }, http: { port } }),
    );
    try {
      await pipeline.service.producer!.idle();
      gate.hold();
      await redis.set('drain:1', 'in flight');
      await waitFor(
        'a bulk request in flight',
        async () => gate.held(),
        (n) => n > 0,
      );
      expect((await fetch(`${base}/readyz`)).status).toBe(200);

      // The worker cannot finish draining until the held bulk is answered.
      const stopping = pipeline.stop();
      const draining = await fetch(`${base}/readyz`);
      expect(draining.status).toBe(503);
      expect(await draining.json()).toEqual({ status: 'draining' });
      expect((await fetch(`${base}/healthz`)).status).toBe(200);

      gate.release();
      await stopping;
      await expect(fetch(`${base}/healthz`)).rejects.toThrow();
    } finally {
      await gate.close();
    }
  });

  it('serves only the HTTP surface with `dashboard`, and stops on SIGTERM', async () => {
    const port = await getFreePort();
    const cli = spawnCli({ ...testConfigInput(servers), logLevel: 'info' }, ['--http-port', String(port), 'dashboard']);
    try {
      await waitFor(
        'the dashboard to listen',
        async () => cli.output(),
        (o) => o.includes('http surface listening') || cli.exitCode !== null,
        20000,
      );
      const page = await fetch(`http://127.0.0.1:${port}/queues`);
      expect(page.status).toBe(200);
      expect((await fetch(`http://127.0.0.1:${port}/readyz`)).status).toBe(200);
      const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      expect(metricValue(metrics, 'redis_es_sync_queue_jobs', { state: 'waiting' })).toBe(0);
    } finally {
      cli.kill('SIGTERM');
    }
    expect(await exited(cli)).toBe(0);
    expect(cli.output()).not.toMatch(/capturing keyspace notifications|worker started/);
  });
});
