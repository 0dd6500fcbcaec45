import { Redis } from 'ioredis';
import { leaseKeys } from '../../producers/lease';
import type { ConfigInput } from '../../producers/capture/registry';
import { unfinishedJobs } from '../../shared/core/queue';
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

type Cli = ReturnType<typeof spawnCli>;

/** Two producer processes: only the lease holder captures; the other takes over when it dies. */
describe('producer high availability', () => {
  let servers: TestServers;
  let redis: Redis;
  let queueRedis: Redis;
  let worker: TestPipeline | undefined;
  const children: Cli[] = [];

  beforeEach(async () => {
    servers = await startServers('ha');
    redis = new Redis(servers.source.url);
    queueRedis = new Redis(servers.queue.url);
  });

  afterEach(async () => {
    for (const c of children.splice(0)) {
      c.kill('SIGKILL');
      await exited(c);
    }
    await worker?.stop();
    worker = undefined;
    redis.disconnect();
    queueRedis.disconnect();
    await servers.stop();
  });

  const input = (): ConfigInput => ({
    ...testConfigInput(servers, { producer: { leaseTtlMs: 2000, leaseRenewMs: 200 } }),
    logLevel: 'info',
  });

  const producer = (): Cli => {
    const c = spawnCli(input(), ['producer']);
    children.push(c);
    return c;
  };

  const leads = (c: Cli): boolean => c.output().includes('producer lease acquired');

  /** Starts two producers and returns them as [leader, standby] once both settled. */
  const twoProducers = async (): Promise<[Cli, Cli]> => {
    const a = producer();
    await waitFor('the first producer to lead', async () => leads(a), Boolean, 30000);
    const b = producer();
    await waitFor(
      'the second producer to stand by',
      async () => b.output(),
      (o) => o.includes('standby: another producer holds the lease'),
      30000,
    );
    return [a, b];
  };

  /** Connections subscribed to keyevent notifications on the source: one per capturing producer. */
  const subscribers = async (): Promise<number> => {
    const list = (await redis.client('LIST')) as string;
    return list.split('\n').filter((l) => l.includes('name=redis-es-sync:notifications') && !l.includes(' psub=0 '))
      .length;
  };

  it('only one of two live producers captures, and a graceful stop hands over at once', async () => {
    worker = await startPipeline(testConfigInput(servers), { producer: false, worker: true });
    const [leader, standby] = await twoProducers();
    expect(leads(standby)).toBe(false);
    expect(await subscribers()).toBe(1);
    expect(await queueRedis.get(leaseKeys('redis-es-sync').fence)).toBe('1');

    const queue = worker.ctx.queues().partitions[0]!;
    const liveKeys = async (): Promise<string[]> =>
      (await queue.getCompleted(0, -1)).flatMap((j) => j.data.keys).filter((k) => k.startsWith('one:'));
    for (let i = 0; i < 50; i++) await redis.set(`one:${i}`, String(i));
    await waitInSync(worker.ctx);
    // One producer enqueued each change: every key once (reconciliation at start saw no keys).
    await waitFor('the live jobs to complete', liveKeys, (k) => k.length >= 50);
    expect((await liveKeys()).sort()).toEqual(Array.from({ length: 50 }, (_, i) => `one:${i}`).sort());

    leader.kill('SIGTERM');
    expect(await exited(leader)).toBe(0);
    expect(leader.output()).toContain('producer lease released');
    await waitFor('the standby to take over', async () => leads(standby), Boolean, 30000);
    await waitFor('the standby to subscribe', subscribers, (n) => n === 1);
    expect(await queueRedis.get(leaseKeys('redis-es-sync').fence)).toBe('2');
    await redis.set('after-handover', 'x');
    await waitInSync(worker.ctx);
  });

  it('the standby takes over from a leader killed during writes, and nothing is lost', async () => {
    worker = await startPipeline(testConfigInput(servers), { producer: false, worker: true });
    const [leader, standby] = await twoProducers();

    let killed = false;
    const writes = (async () => {
      // About 21,000 writes (a hash, a string, every 7th a delete), the leader killed after 3,000 rounds.
      for (let i = 0; i < 10000; i++) {
        const pipe = redis.pipeline();
        pipe.hset(`user:${i % 400}`, { n: String(i), name: `user ${i}` });
        if (i % 7 === 0) pipe.del(`user:${(i * 13) % 400}`);
        pipe.set(`seq:${i}`, String(i));
        await pipe.exec();
        if (i === 3000) {
          leader.kill('SIGKILL');
          killed = true;
        }
        if (i % 50 === 0) await new Promise((r) => setTimeout(r, 5));
      }
    })();
    await writes;
    expect(killed).toBe(true);
    await exited(leader);

    await waitFor('the standby to take over', async () => leads(standby), Boolean, 30000);
    expect(standby.output()).toMatch(/"fence":2/);
    await waitFor(
      'queue drained',
      () => unfinishedJobs(worker!.ctx.queues().partitions[0]!),
      (n) => n === 0,
      60000,
      200,
    );
    const report = await waitInSync(worker.ctx, 90000);
    // The freshness canary's heartbeat key is in the source but not the user's data: verify leaves it out.
    const heartbeats = (await redis.keys('redis-es-sync-canary:*')).length;
    expect(report.checked).toBe((await redis.dbsize()) - heartbeats);
  });
});
