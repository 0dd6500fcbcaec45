import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { leaseKeys } from '../../producers/lease';
import type { ConfigInput } from '../../producers/capture/registry';
import { unfinishedJobs } from '../../shared/core/queue';
import { uniqueIndex } from './elasticsearch';
import { exited, spawnCli, verifyNow, waitFor, waitInSync, type TestPipeline, type TestServers } from './pipeline';
import { startRedis, type RedisServerHandle } from './redis-server';

export type Cli = ReturnType<typeof spawnCli>;

/** Short enough that a paused producer loses the lease within a test, long enough for two cores shared by several test runs. */
export const LEASE = { leaseTtlMs: 1500, leaseRenewMs: 250 } as const;

export const leads = (c: Cli): boolean => c.output().includes('capture started under the lease');
export const steppedDown = (c: Cli): boolean => c.output().includes('producer lease lost: stopping capture');

/** The fencing number the queue Redis last handed out: how many acquisitions there were. */
export async function fenceNumber(queueRedis: Redis): Promise<number> {
  return Number((await queueRedis.get(leaseKeys('redis-es-sync').fence)) ?? 0);
}

/**
 * Two producer processes started at the same moment, racing for the lease; resolves once one
 * leads and the other stands by, as [leader, standby].
 */
export async function racingProducers(
  input: ConfigInput | readonly [ConfigInput, ConfigInput],
  children: Cli[],
): Promise<[Cli, Cli]> {
  const [inA, inB] = Array.isArray(input)
    ? (input as readonly [ConfigInput, ConfigInput])
    : [input as ConfigInput, input as ConfigInput];
  const a = spawnCli({ ...inA, logLevel: 'info' }, ['producer']);
  const b = spawnCli({ ...inB, logLevel: 'info' }, ['producer']);
  children.push(a, b);
  const standingBy = (c: Cli): boolean => c.output().includes('standby: another producer holds the lease');
  await waitFor(
    'one producer to lead and the other to stand by',
    async () => [leads(a), leads(b), standingBy(a), standingBy(b), a.exitCode, b.exitCode],
    ([la, lb, sa, sb, ea, eb]) =>
      (la === true && sb === true) || (lb === true && sa === true) || ea !== null || eb !== null,
    60000,
  );
  if (a.exitCode !== null || b.exitCode !== null) throw new Error(`a producer exited:\n${a.output()}\n${b.output()}`);
  return leads(a) ? [a, b] : [b, a];
}

/**
 * Writes rounds `from`..`to` through `round`; once `pauseAt` is reached, freezes the leader
 * (SIGSTOP) and keeps writing until the standby has taken over, then lets the old leader run
 * again (SIGCONT) with whatever it had captured, and writes on.
 */
export async function burstWithPausedLeader(opts: {
  rounds: number;
  pauseAt: number;
  round: (i: number) => Promise<unknown>;
  leader: Cli;
  standby: Cli;
}): Promise<void> {
  const { leader, standby } = opts;
  for (let i = 0; i < opts.rounds; i++) {
    await opts.round(i);
    if (i === opts.pauseAt) {
      leader.kill('SIGSTOP');
      // Writes go on while it is frozen: they are the old leader's in-flight state and then the new one's.
      let j = 0;
      while (!leads(standby)) {
        await opts.round(opts.rounds + j++);
        await new Promise((r) => setTimeout(r, 20));
        if (j > 2000) throw new Error(`the standby did not take over:\n${standby.output()}`);
      }
      leader.kill('SIGCONT');
    }
    if (i % 20 === 0) await new Promise((r) => setTimeout(r, 5));
  }
}

export async function killAll(children: Cli[]): Promise<void> {
  for (const c of children.splice(0)) {
    c.kill('SIGCONT');
    c.kill('SIGKILL');
    await exited(c);
  }
}

/**
 * What every hand-over test needs: its servers, clients on the source and the queue Redis, the
 * producer processes it spawned and a worker, all torn down after the file's tests. Call at
 * the top of a describe block; the getters are usable from beforeAll on.
 */
export class HandoverFixture<S extends TestServers = TestServers> {
  readonly children: Cli[] = [];
  worker: TestPipeline | undefined;
  private opened: { servers: S; redis: Redis; queueRedis: Redis } | undefined;

  constructor(start: () => Promise<S>, seed?: (redis: Redis) => Promise<void>) {
    beforeAll(async () => {
      const servers = await start();
      this.opened = { servers, redis: new Redis(servers.source.url), queueRedis: new Redis(servers.queue.url) };
      await seed?.(this.opened.redis);
    });
    afterAll(async () => {
      await killAll(this.children);
      await this.worker?.stop();
      this.opened?.redis.disconnect();
      this.opened?.queueRedis.disconnect();
      await this.opened?.servers.stop();
    });
  }

  private get state(): { servers: S; redis: Redis; queueRedis: Redis } {
    if (!this.opened) throw new Error('the hand-over fixture is used before its beforeAll ran');
    return this.opened;
  }

  get servers(): S {
    return this.state.servers;
  }

  get redis(): Redis {
    return this.state.redis;
  }

  get queueRedis(): Redis {
    return this.state.queueRedis;
  }

  /** Waits until the queue is drained and the index verifies in sync, then asserts 0 missing and 0 stale. */
  async expectNothingMissing(): Promise<void> {
    if (!this.worker) throw new Error('no worker started');
    await expectNothingMissing(this.worker);
  }
}

/** Waits until the queue is drained and the index verifies in sync, then asserts 0 missing and 0 stale. */
export async function expectNothingMissing(worker: TestPipeline): Promise<void> {
  await waitFor(
    'the queue drained',
    () => unfinishedJobs(worker.ctx.queues().partitions[0]!),
    (n) => n === 0,
    90000,
    200,
  );
  await waitInSync(worker.ctx, 90000);
  const report = await verifyNow(worker.ctx);
  expect(report.missing).toEqual([]);
  expect(report.stale).toEqual([]);
}

export interface RestartableQueueServers extends TestServers {
  /** Stops the queue Redis, runs `whileDown`, and starts it again on its port from its AOF. */
  restartQueue(whileDown: () => Promise<void>): Promise<void>;
}

/**
 * A source Redis and a queue Redis that keeps what it acknowledged across a restart, as docs/operations.md
 * tells users to run it (`appendonly yes`; fsync at its default, every second: a SIGTERM'd
 * server writes its AOF out before it exits).
 */
export async function restartableQueueServers(
  indexPrefix: string,
  opts: { notify: boolean },
): Promise<RestartableQueueServers> {
  const [sourceDir, queueDir] = [
    await mkdtemp(join(tmpdir(), 'res-source-')),
    await mkdtemp(join(tmpdir(), 'res-queue-')),
  ];
  const dirs = [sourceDir, queueDir];
  const queueArgs = ['--dir', queueDir, '--appendonly', 'yes'];
  const [source, firstQueue] = await Promise.all([
    startRedis({ notifyKeyspaceEvents: opts.notify ? 'KEA' : undefined, args: ['--dir', sourceDir] }),
    startRedis({ args: queueArgs }),
  ]);
  let queue: RedisServerHandle = firstQueue;
  return {
    source,
    get queue() {
      return queue;
    },
    index: uniqueIndex(indexPrefix),
    async restartQueue(whileDown) {
      await queue.stop();
      await whileDown();
      queue = await startRedis({ port: queue.port, args: queueArgs });
    },
    async stop() {
      await Promise.all([source.stop(), queue.stop()]);
      for (const d of dirs) await rm(d, { recursive: true, force: true });
    },
  };
}

/**
 * A lease lost mid-burst because the queue Redis restarted: down for longer than the lease TTL
 * while writes go on, so every producer's lease is gone when it is back. Resolves once a new
 * tenure captures again.
 */
export async function burstAcrossQueueRestart(opts: {
  servers: RestartableQueueServers;
  queueRedis: Redis;
  round: (i: number) => Promise<unknown>;
  children: readonly Cli[];
}): Promise<void> {
  const { round } = opts;
  const tenures = (): number =>
    opts.children.reduce((n, c) => n + c.output().split('capture started under the lease').length - 1, 0);
  const before = tenures();
  const fenceBefore = await fenceNumber(opts.queueRedis);
  let next = 0;
  while (next < 1000) await round(next++);
  await opts.servers.restartQueue(async () => {
    const downUntil = Date.now() + 2 * LEASE.leaseTtlMs;
    while (Date.now() < downUntil || next < 1600) {
      await round(next++);
      await new Promise((r) => setTimeout(r, 5));
    }
  });
  const end = next + 1400;
  while (next < end) await round(next++);
  await waitFor(
    'a new tenure',
    () => fenceNumber(opts.queueRedis),
    (n) => n > fenceBefore,
    30000,
  );
  await waitFor(
    'a producer to capture again',
    async () => tenures(),
    (n) => n > before,
    30000,
  );
}
