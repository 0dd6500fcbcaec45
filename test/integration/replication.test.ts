import { Redis } from 'ioredis';
import type { LeasedProducer } from '../../producers/leased-producer';
import type { CaptureHost } from '../../producers/capture/host';
import type { ReplicationMode } from '../../producers/capture/replication/mode';
import { RedisSetupError } from '../../shared/platform/errors';
import { buildContext } from '../../cli/context';
import { startService } from '../../cli/service';
import { createLogger } from '../../shared/platform/logger';
import {
  exited,
  loadedConfig,
  spawnCli,
  startPipeline,
  waitFor,
  waitInSync,
  type TestPipeline,
  type TestServers,
} from '../support/pipeline';
import { replicationInput, replicationServers } from '../support/replication';
import type { ConfigInput } from '../../producers/capture/registry';

async function syncStats(redis: Redis): Promise<{ full: number; partialOk: number; partialErr: number }> {
  const info = await redis.info('stats');
  const n = (name: string): number => Number(new RegExp(`^${name}:(\\d+)`, 'm').exec(info)?.[1] ?? NaN);
  return { full: n('sync_full'), partialOk: n('sync_partial_ok'), partialErr: n('sync_partial_err') };
}

/** The replication producer of the lease holder (the test's only producer leads at once). */
function producerOf(p: TestPipeline): CaptureHost<ReplicationMode> {
  return (p.service.producer as LeasedProducer).current as CaptureHost<ReplicationMode>;
}

async function seed(redis: Redis, n: number): Promise<void> {
  const p = redis.pipeline();
  for (let i = 0; i < n; i++) {
    p.hset(`user:${i}`, { name: `user ${i}`, n: String(i) });
    if (i % 10 === 0) p.rpush(`list:${i}`, 'a', 'b', String(i));
    if (i % 10 === 1) p.zadd(`zset:${i}`, i, 'm', -i, 'n');
  }
  p.select(1);
  for (let i = 0; i < n / 10; i++) p.set(`db1:${i}`, `value ${i}`);
  p.select(0);
  await p.exec();
}

describe('replication producer', () => {
  describe('diskless full resync, then the live stream', () => {
    let servers: TestServers;
    let redis: Redis;
    let pipeline: TestPipeline | undefined;

    beforeAll(async () => {
      servers = await replicationServers('repl-live');
      redis = new Redis(servers.source.url);
      await seed(redis, 2000);
    });

    afterAll(async () => {
      await pipeline?.stop();
      redis.disconnect();
      await servers.stop();
    });

    it('indexes the snapshot, then every kind of replicated write, flushes and swaps included', async () => {
      pipeline = await startPipeline(replicationInput(servers));
      await producerOf(pipeline).idle();
      expect(producerOf(pipeline).mode.fullResyncs).toBe(1);
      await waitInSync(pipeline.ctx);

      // Writes of every kind: plain, transactional, expiring, moving between databases.
      await redis.set('fresh', '1');
      await redis.multi().hset('user:1', 'name', 'renamed in a transaction').del('user:2').incr('counter').exec();
      await redis.rename('user:3', 'user:3:renamed');
      await redis.set('short-lived', 'x', 'PX', 30);
      await redis.zunionstore('zset:union', 2, 'zset:1', 'zset:11');
      await redis.move('user:4', 1);
      await redis.copy('user:5', 'user:5:copy', 'DB', 1);
      await redis.lmpop(1, 'list:10', 'LEFT');
      await redis.restore('restored', 0, await redis.dumpBuffer('user:12'));
      await redis.xadd('events', '*', 'kind', 'created');
      await redis.xgroup('CREATE', 'events', 'readers', '0');
      await redis.eval(
        "redis.call('SET', KEYS[1], ARGV[1]); redis.call('DEL', KEYS[2])",
        2,
        'from-script',
        'user:6',
        'scripted',
      );
      await waitFor(
        'the short-lived key to expire',
        () => redis.exists('short-lived'),
        (n) => n === 0,
      );
      await waitInSync(pipeline.ctx);
      // Every key came from the stream itself, none from a fallback reconciliation.
      expect([...producerOf(pipeline).mode.unknownCommands]).toEqual([]);

      await redis.select(1);
      await redis.flushdb();
      await redis.set('db1:after-flush', 'y');
      await redis.select(0);
      await waitInSync(pipeline.ctx);

      await redis.swapdb(0, 1);
      await waitInSync(pipeline.ctx);
      expect(producerOf(pipeline).mode.fullResyncs).toBe(1);
    });

    it('a dropped link is re-established with a partial resync, without losing the writes in between', async () => {
      const producer = producerOf(pipeline!);
      const before = await syncStats(redis);
      await redis.client('KILL', 'TYPE', 'REPLICA');
      await redis.set('written-while-reconnecting', 'z');
      await redis.del('user:9');
      await waitFor(
        'the producer to continue',
        async () => producer.mode.partialResyncs,
        (n) => n === 1,
      );
      expect(await syncStats(redis)).toEqual({ ...before, partialOk: before.partialOk + 1 });
      expect(producer.mode.fullResyncs).toBe(1);
      await waitInSync(pipeline!.ctx);
    });
  });

  describe('disk-based full resync ($<length> transfer)', () => {
    let servers: TestServers;
    let redis: Redis;
    let pipeline: TestPipeline | undefined;

    beforeAll(async () => {
      servers = await replicationServers('repl-disk', ['--repl-diskless-sync', 'no']);
      redis = new Redis(servers.source.url);
      await seed(redis, 500);
    });

    afterAll(async () => {
      await pipeline?.stop();
      redis.disconnect();
      await servers.stop();
    });

    it('loads the RDB file and follows the stream', async () => {
      pipeline = await startPipeline(replicationInput(servers));
      await producerOf(pipeline).idle();
      await redis.del('user:7');
      await redis.hset('user:8', 'name', 'changed');
      await waitInSync(pipeline.ctx);
      expect((await syncStats(redis)).full).toBe(1);
    });
  });

  describe('restarts', () => {
    let servers: TestServers;
    let redis: Redis;
    let worker: TestPipeline | undefined;
    let cli: ReturnType<typeof spawnCli> | undefined;

    beforeEach(async () => {
      servers = await replicationServers('repl-restart', ['--repl-backlog-size', '16kb']);
      redis = new Redis(servers.source.url);
      await seed(redis, 1000);
    });

    afterEach(async () => {
      cli?.kill('SIGKILL');
      if (cli) await exited(cli);
      cli = undefined;
      await worker?.stop();
      worker = undefined;
      redis.disconnect();
      await servers.stop();
    });

    async function startProducerCli(input: ConfigInput): Promise<ReturnType<typeof spawnCli>> {
      const child = spawnCli({ ...input, logLevel: 'info' }, ['producer']);
      await waitFor(
        'the producer to replicate',
        async () => child.output(),
        (out) => out.includes('replicating from the source Redis') || child.exitCode !== null,
        30000,
      );
      return child;
    }

    async function checkpointed(): Promise<number> {
      const q = worker!.ctx.queueRedis;
      return Number((await q.hget(`${worker!.ctx.config.queue.prefix}:replication:checkpoint`, 'offset')) ?? -1);
    }

    async function workload(from: number, to: number): Promise<void> {
      for (let i = from; i < to; i += 100) {
        const p = redis.pipeline();
        for (let j = i; j < i + 100; j++) {
          const k = j % 1500;
          if (j % 7 === 0) p.del(`user:${k}`);
          else if (j % 5 === 0) p.rpush(`list:${k % 50}`, String(j));
          else p.hset(`user:${k}`, { name: `v${j}`, n: String(j) });
        }
        await p.exec();
      }
    }

    it('a producer killed mid-workload resumes with PSYNC CONTINUE and loses nothing', async () => {
      // A backlog large enough for what happens while the producer is down.
      await redis.config('SET', 'repl-backlog-size', '10mb');
      const input = replicationInput(servers);
      worker = await startPipeline(input, { producer: false, worker: true });
      cli = await startProducerCli(input);
      // Tens of thousands of writes in all: 10,000 before the kill, 10,000 while down, 10,000 after.
      await workload(0, 10000);
      // End on database 1 and let the checkpoint cover it: after CONTINUE the master sends no
      // SELECT while it stays on database 1, so the producer must remember it.
      const db1 = new Redis(servers.source.url, { db: 1 });
      await db1.set('db1:before-kill', 'a');
      const offset = async (): Promise<number> =>
        Number(/master_repl_offset:(\d+)/.exec(await redis.info('replication'))?.[1]);
      const target = await offset();
      await waitFor('a checkpoint covering everything so far', checkpointed, (o) => o >= target);
      cli.kill('SIGKILL');
      await exited(cli);
      await db1.set('db1:while-down', 'b');
      await db1.del('db1:3');
      db1.disconnect();
      await workload(10000, 20000);
      cli = await startProducerCli(input);
      await workload(20000, 30000);
      expect(cli.output()).toMatch(/"resync":"continue"/);
      expect(await syncStats(redis)).toEqual({ full: 1, partialOk: 1, partialErr: 0 });
      await waitInSync(worker.ctx, 90000);
    });

    it('falls back to a full resync when the backlog no longer holds the checkpoint', async () => {
      const input = replicationInput(servers);
      worker = await startPipeline(input, { producer: false, worker: true });
      cli = await startProducerCli(input);
      await waitFor('a checkpoint', checkpointed, (o) => o >= 0);
      cli.kill('SIGKILL');
      await exited(cli);
      // Far more than the 16 kB backlog, deletions included (their documents must go too).
      await workload(0, 6000);
      cli = await startProducerCli(input);
      expect(await syncStats(redis)).toMatchObject({ full: 2, partialErr: 1 });
      await waitInSync(worker.ctx, 90000);
    });
  });

  describe('a user that may not replicate', () => {
    let servers: TestServers;

    beforeAll(async () => {
      servers = await replicationServers('repl-acl');
      const admin = new Redis(servers.source.url);
      await admin.call('ACL', 'SETUSER', 'app', 'on', '>secret', '~*', '&*', '+@all', '-psync', '-sync');
      admin.disconnect();
    });

    afterAll(async () => {
      await servers.stop();
    });

    it('stops with a setup error that names the notifications mode', async () => {
      const input = replicationInput(servers);
      const url = servers.source.url.replace('redis://', 'redis://app:secret@');
      const loaded = loadedConfig({ ...input, redis: { url, databases: [0] } });
      const ctx = buildContext(loaded, createLogger(loaded.config.logLevel));
      try {
        const attempt = startService(ctx, { producer: true, worker: false });
        await expect(attempt).rejects.toThrow(RedisSetupError);
        await expect(attempt).rejects.toThrow(/PSYNC.*producer\.mode: notifications/s);
      } finally {
        await ctx.close();
      }
    });
  });
});
