import { Job, Queue } from 'bullmq';
import { Redis } from 'ioredis';
import type { SyncJobData } from '../../shared/core/queue';
import { bearer, metricValue } from '../support/http';
import {
  getDoc,
  startPipeline,
  startServers,
  testConfigInput,
  waitFor,
  waitInSync,
  type TestServers,
} from '../support/pipeline';
import { getFreePort } from '../support/ports';

const TOKENS = { search: 'search-token-3f9a0c', viewer: 'viewer-token-b71e22', operator: 'operator-token-5d08e4' };

/** Least-privilege HTTP roles, the worker's refusal of jobs outside the configuration, and a paused queue in /readyz. */
describe('HTTP roles and a worker that trusts no job', () => {
  let servers: TestServers;
  let redis: Redis;

  beforeAll(async () => {
    servers = await startServers('roles');
    redis = new Redis(servers.source.url);
  });

  afterAll(async () => {
    redis.disconnect();
    await servers.stop();
  });

  const call = async (base: string, method: string, path: string, token?: string, body?: unknown): Promise<number> => {
    const headers: Record<string, string> = {
      ...(token ? bearer(token) : {}),
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
    };
    const res = await fetch(`${base}${path}`, {
      method,
      headers,
      body: body !== undefined ? JSON.stringify(body) : undefined,
    });
    await res.arrayBuffer();
    return res.status;
  };

  it('gives search clients, viewers and operators only their own rights; destructive actions stay off', async () => {
    const port = await getFreePort();
    const input = testConfigInput(servers, {
      http: {
        port,
        search: { token: TOKENS.search },
        viewer: { token: TOKENS.viewer },
        operator: { token: TOKENS.operator },
      },
    });
    const pipeline = await startPipeline(input);
    const base = `http://127.0.0.1:${port}`;
    const index = servers.index;
    try {
      await redis.set('fruit:1', 'apple');
      await waitInSync(pipeline.ctx);
      const matrix: [string, string, keyof typeof TOKENS | undefined, number][] = [
        ['GET', `/search/${index}?q=apple`, 'search', 200],
        ['GET', `/doc/${index}/fruit:1`, 'search', 200],
        ['GET', '/queues', 'search', 403],
        ['GET', '/queues/api/queues', 'search', 403],
        ['GET', '/metrics', 'search', 403],
        ['PUT', '/queues/api/queues/changes/retry/failed', 'search', 403],
        ['GET', '/queues', 'viewer', 200],
        ['GET', '/queues/api/queues', 'viewer', 200],
        ['GET', '/metrics', 'viewer', 200],
        ['GET', `/search/${index}?q=apple`, 'viewer', 403],
        ['GET', `/doc/${index}/fruit:1`, 'viewer', 403],
        ['PUT', '/queues/api/queues/changes/retry/failed', 'viewer', 403],
        ['PUT', '/queues/api/queues/changes/clean/completed', 'viewer', 403],
        ['GET', '/queues/api/queues', 'operator', 200],
        ['PUT', '/queues/api/queues/changes/retry/failed', 'operator', 200],
        ['PUT', '/queues/api/queues/changes/clean/completed', 'operator', 200],
        ['PUT', '/queues/api/queues/changes/promote', 'operator', 200],
        ['GET', `/search/${index}?q=apple`, 'operator', 403],
        // Destructive: refused to everyone unless http.allowDestructiveQueueActions.
        ['PUT', '/queues/api/queues/changes/pause', 'operator', 403],
        ['PUT', '/queues/api/queues/pause', 'operator', 403],
        ['PUT', '/queues/api/queues/changes/empty', 'operator', 403],
        ['PUT', '/queues/api/queues/changes/obliterate', 'operator', 403],
        ['GET', '/queues/api/queues', undefined, 401],
        ['GET', `/search/${index}?q=apple`, undefined, 401],
        ['GET', '/readyz', undefined, 200],
      ];
      const got = [];
      for (const [method, path, role] of matrix)
        got.push({ method, path, role, status: await call(base, method, path, role && TOKENS[role]) });
      expect(got).toEqual(matrix.map(([method, path, role, expected]) => ({ method, path, role, status: expected })));
      const added = await call(base, 'POST', '/queues/api/queues/changes/add', TOKENS.operator, {
        name: 'change',
        data: { db: 0, keys: ['fruit:1'], v: 1, t: 0, src: 'replay' },
      });
      expect(added).toBe(403);
      expect(await pipeline.ctx.queues().partitions[0]!.isPaused()).toBe(false);
    } finally {
      await pipeline.stop();
    }
  });

  it('fails a job for a database or keys the configuration does not sync, reading nothing', async () => {
    const input = testConfigInput(servers, {
      mapping: { defaultIndex: servers.index, rules: [{ match: 'hidden:*', skip: true }] },
      // The test counts the source's key reads: the canary's heartbeat reads would add to them.
      producer: { canary: { enabled: false } },
    });
    const pipeline = await startPipeline(input);
    const db5 = new Redis(servers.source.url, { db: 5 });
    const queueConnection = new Redis(servers.queue.url, { maxRetriesPerRequest: null });
    const queue = new Queue<SyncJobData>('changes', { connection: queueConnection, prefix: 'redis-es-sync' });
    try {
      await db5.set('secret:1', 'db5-secret-value');
      await redis.set('hidden:1', 'skipped-secret-value');
      await waitInSync(pipeline.ctx);
      const stats = async (): Promise<number> => {
        const info = await redis.info('stats');
        const n = (name: string): number => Number(new RegExp(`${name}:(\\d+)`).exec(info)?.[1] ?? 0);
        return n('keyspace_hits') + n('keyspace_misses');
      };
      const readsBefore = await stats();
      const forged = [
        await queue.add('change', { db: 5, keys: ['secret:1'], v: 1, t: Date.now(), src: 'replay' }),
        await queue.add('change', { db: 0, keys: ['hidden:1'], v: 2, t: Date.now(), src: 'replay' }),
        await queue.add('change', {
          db: 0,
          keys: ['fruit:2', 'redis-es-sync:version'],
          v: 3,
          t: Date.now(),
          src: 'replay',
        }),
      ];
      const finished = await Promise.all(
        forged.map((job) =>
          waitFor(
            `job ${job.id} to fail`,
            async () => Job.fromId<SyncJobData>(queue, job.id!),
            (j) => j?.failedReason !== undefined && j.failedReason !== '',
            20000,
          ),
        ),
      );
      expect(finished.map((j) => j?.failedReason)).toEqual([
        'refused: database 5 is not synced (redis.databases: [0]); nothing was read',
        'refused: 1 of 1 keys are not synced by the mapping rules ("hidden:1"); nothing was read',
        'refused: 1 of 2 keys are not synced by the mapping rules ("redis-es-sync:version"); nothing was read',
      ]);
      expect(await stats()).toBe(readsBefore);
      // No connection of the tool ever selected database 5.
      const clients = ((await redis.client('LIST')) as string)
        .split('\n')
        .filter((l) => l.includes('name=redis-es-sync'));
      expect(clients.length).toBeGreaterThan(0);
      expect(clients.filter((l) => l.includes(' db=5 '))).toEqual([]);
      expect(await getDoc(pipeline.ctx, servers.index, 'secret:1')).toBeUndefined();
      expect(await getDoc(pipeline.ctx, servers.index, '5:secret:1')).toBeUndefined();
      expect(await getDoc(pipeline.ctx, servers.index, 'hidden:1')).toBeUndefined();
      const metrics = await (await import('../../shared/platform/metrics')).registry.metrics();
      expect(metricValue(metrics, 'redis_es_sync_jobs_refused_total')).toBeGreaterThanOrEqual(3);
    } finally {
      await queue.close();
      queueConnection.disconnect();
      db5.disconnect();
      await pipeline.stop();
    }
  });

  it('with destructive actions enabled, an operator may pause: /readyz and the metric show it', async () => {
    const port = await getFreePort();
    const input = testConfigInput(servers, {
      http: {
        port,
        viewer: { token: TOKENS.viewer },
        operator: { token: TOKENS.operator },
        allowDestructiveQueueActions: true,
      },
    });
    const pipeline = await startPipeline(input, { producer: false, worker: true });
    const base = `http://127.0.0.1:${port}`;
    try {
      expect((await fetch(`${base}/readyz`)).status).toBe(200);
      expect(await call(base, 'PUT', '/queues/api/queues/changes/pause', TOKENS.viewer)).toBe(403);
      expect(await call(base, 'PUT', '/queues/api/queues/changes/pause', TOKENS.operator)).toBe(200);
      const ready = await fetch(`${base}/readyz`);
      expect(ready.status).toBe(503);
      expect(await ready.json()).toEqual({
        status: 'unavailable',
        checks: { 'source-redis': 'ok', 'queue-redis': 'ok', elasticsearch: 'ok', queue: 'down' },
      });
      const metrics = await (await fetch(`${base}/metrics`, { headers: bearer(TOKENS.viewer) })).text();
      expect(metricValue(metrics, 'redis_es_sync_queue_paused')).toBe(1);
      expect(await call(base, 'PUT', '/queues/api/queues/changes/resume', TOKENS.operator)).toBe(200);
      expect((await fetch(`${base}/readyz`)).status).toBe(200);
      const after = await (await fetch(`${base}/metrics`, { headers: bearer(TOKENS.viewer) })).text();
      expect(metricValue(after, 'redis_es_sync_queue_paused')).toBe(0);
    } finally {
      await pipeline.ctx.queues().partitions[0]!.resume();
      await pipeline.stop();
    }
  });
});
