import { Redis } from 'ioredis';
import { registry } from '../../shared/platform/metrics';
import { metricValue } from '../support/http';
import {
  exited,
  spawnCli,
  startPipeline,
  startServers,
  testConfigInput,
  waitFor,
  type TestPipeline,
  type TestServers,
} from '../support/pipeline';
import { startRedis, type RedisServerHandle } from '../support/redis-server';

/** A producer pointed at an empty or wrong source must not empty the index. */
describe('the mass-deletion guard', () => {
  let servers: TestServers;
  let empty: RedisServerHandle;
  let redis: Redis;
  const pipelines: TestPipeline[] = [];
  const guard = { maxShare: 0.2, minDeletes: 100 };

  beforeAll(async () => {
    servers = await startServers('guard');
    empty = await startRedis({ notifyKeyspaceEvents: 'KEA' });
    redis = new Redis(servers.source.url);
  });

  afterAll(async () => {
    for (const p of pipelines) await p.stop();
    redis.disconnect();
    await servers.stop();
    await empty.stop();
  });

  const count = (p: TestPipeline): Promise<number> => p.ctx.sink.count(servers.index);

  it('deletes what vanished within the limit, refuses an emptied source, and goes on only when told', async () => {
    const pipe = redis.pipeline();
    for (let i = 0; i < 300; i++) pipe.set(`item:${i}`, `v${i}`);
    await pipe.exec();
    const input = testConfigInput(servers, { producer: { deletionGuard: guard } });
    const first = await startPipeline(input);
    await first.service.producer!.idle();
    await waitFor(
      '300 documents',
      () => count(first),
      (n) => n === 300,
    );
    await first.stop();

    // 50 keys deleted while no producer ran: within max(100, 20% of 300), so the next start deletes them.
    await redis.del(...Array.from({ length: 50 }, (_, i) => `item:${i}`));
    const second = await startPipeline(input);
    pipelines.push(second);
    await second.service.producer!.idle();
    await waitFor(
      '250 documents',
      () => count(second),
      (n) => n === 250,
    );
    await second.stop();
    pipelines.pop();

    // The same index, a source without the data (a typo in REDIS_URL, a restart without persistence).
    const wrong = { ...input, redis: { url: empty.url } };
    const third = await startPipeline(wrong);
    pipelines.push(third);
    await third.service.producer!.idle();
    await new Promise((r) => setTimeout(r, 1000));
    expect(await count(third)).toBe(250);
    const metrics = await registry.metrics();
    expect(metricValue(metrics, 'redis_es_sync_deletions_refused', { index: servers.index })).toBeGreaterThan(100);

    // The one-off command refuses as well, saying why and what to do.
    const refused = spawnCli(wrong, ['reconcile']);
    expect(await exited(refused)).toBe(1);
    expect(refused.output()).toMatch(
      /refused to delete documents: index \S+: at least \d+ of 250 documents have no key, over the limit of 100.*--allow-mass-deletion/,
    );
    expect(await count(third)).toBe(250);

    // The operator's explicit go-ahead.
    const allowed = spawnCli(wrong, ['reconcile', '--allow-mass-deletion', '--wait']);
    expect(await exited(allowed)).toBe(0);
    await waitFor(
      'the index emptied',
      () => count(third),
      (n) => n === 0,
    );
  });
});
