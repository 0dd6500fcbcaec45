import { Redis } from 'ioredis';
import { readFreshness } from '../../shared/core/canary';
import { freshness } from '../../shared/platform/metrics';
import { testEngine, type TestEngine } from '../support/engines';
import {
  startPipeline,
  startServers,
  testConfigInput,
  verifyNow,
  waitFor,
  type TestPipeline,
  type TestServers,
} from '../support/pipeline';

/** The gauge's value for a shard, as /metrics would show it; undefined while it has none. */
async function freshnessOf(shard: string): Promise<number | undefined> {
  const { values } = await freshness.get();
  return values.find((v) => v.labels.shard === shard)?.value;
}

/**
 * The freshness canary on a real pipeline, against an Elasticsearch of the run's engine matrix
 * (its own JVM, so freezing it with SIGSTOP stops no other test): the metric appears within
 * seconds of the start, rises for as long as the engine is frozen, and comes down again once
 * it runs; the heartbeat keys stay out of verify.
 */
describe('freshness canary', () => {
  let servers: TestServers;
  let engine: TestEngine;
  let pipeline: TestPipeline | undefined;
  let redis: Redis;
  let paused = false;

  beforeAll(async () => {
    engine = testEngine('elasticsearch-8');
    servers = await startServers('canary');
    redis = new Redis(servers.source.url);
  });

  afterAll(async () => {
    if (paused) engine.resume();
    await pipeline?.stop();
    redis.disconnect();
    await servers.stop();
  });

  it('appears within seconds, rises while Elasticsearch is frozen, and falls once it runs again', async () => {
    await redis.hset('user:1', { name: 'Ada' });
    const input = testConfigInput(servers, {
      elasticsearch: { url: engine.url, requestTimeoutMs: 2000 },
      producer: { canary: { intervalMs: 1000, pollMs: 200 } },
    });
    pipeline = await startPipeline(input);
    const { ctx } = pipeline;

    // A loose bound: the first heartbeat goes through capture, queue, worker and a refresh.
    const first = await waitFor(
      'a first freshness measurement',
      async () => (await readFreshness(ctx.queueRedis, ctx.config.queue.prefix))[0],
      (r) => r?.seenWrittenAt !== undefined,
      20000,
      100,
    );
    expect(first?.shard).toBe('source');
    expect(await redis.get('redis-es-sync-canary:source')).toMatch(/^\d+$/);
    const healthy = await waitFor(
      'the gauge',
      () => freshnessOf('source'),
      (v) => v !== undefined,
      5000,
    );
    expect(healthy).toBeDefined();

    // The heartbeat is a key of the source, but not the user's data: verify checks user:1 only.
    const report = await verifyNow(ctx);
    expect(report.checked).toBe(1);
    expect(report.extra).toEqual([]);

    engine.pause();
    paused = true;
    const samples: number[] = [];
    for (let i = 0; i < 4; i++) {
      await new Promise((r) => setTimeout(r, 1500));
      samples.push((await freshnessOf('source')) ?? NaN);
    }
    // Rising with the time frozen: the oldest heartbeat written since cannot be found.
    for (let i = 1; i < samples.length; i++) expect(samples[i]).toBeGreaterThan(samples[i - 1] ?? Infinity);
    expect(samples[samples.length - 1]).toBeGreaterThan(4);
    const frozen = await readFreshness(ctx.queueRedis, ctx.config.queue.prefix);
    expect(frozen[0]?.freshnessMs).toBeGreaterThan(4000);

    engine.resume();
    paused = false;
    const peak = samples[samples.length - 1] ?? 0;
    await waitFor(
      'freshness to fall back once Elasticsearch runs again',
      () => freshnessOf('source'),
      (v) => v !== undefined && v < peak / 2,
      60000,
      200,
    );
  });
});
