import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { checkpointKey } from '../../producers/capture/replication/checkpoint';
import { burstWithPausedLeader, fenceNumber, killAll, LEASE, leads, racingProducers, steppedDown, type Cli } from '../support/handover';
import { startPipeline, verifyNow, waitFor, waitInSync, type TestPipeline, type TestServers } from '../support/pipeline';
import { startRedis, type RedisServerHandle } from '../support/redis-server';
import { replicationInput, replicationServers } from '../support/replication';
import { uniqueIndex } from '../support/elasticsearch';

/** Enough data that the transfer takes a while beyond the master's default 5 s diskless delay. */
async function seedLarge(redis: Redis, keys: number): Promise<void> {
  const value = 'x'.repeat(2000);
  for (let i = 0; i < keys; i += 1000) {
    const p = redis.pipeline();
    for (let j = i; j < Math.min(keys, i + 1000); j++) p.set(`big:${j}`, `${j}:${value}`);
    await p.exec();
  }
}

const round =
  (redis: Redis) =>
  (i: number): Promise<unknown> => {
    const p = redis.pipeline().hset(`user:${i % 300}`, { n: String(i) }).set(`seq:${i % 3000}`, String(i));
    if (i % 7 === 0) p.del(`user:${(i * 13) % 300}`);
    if (i % 11 === 0) p.del(`big:${i % 20000}`);
    return p.exec();
  };

async function expectNothingMissing(worker: TestPipeline): Promise<void> {
  await waitInSync(worker.ctx, 90000);
  const report = await verifyNow(worker.ctx);
  expect(report.missing).toEqual([]);
  expect(report.stale).toEqual([]);
}

describe('replication hand-over, on the source’s default replication settings', () => {
  let servers: TestServers;
  let redis: Redis;
  let queueRedis: Redis;
  let worker: TestPipeline | undefined;
  const children: Cli[] = [];

  beforeAll(async () => {
    servers = await replicationServers('repl-handover');
    redis = new Redis(servers.source.url);
    queueRedis = new Redis(servers.queue.url);
    await seedLarge(redis, 20000);
  });

  afterAll(async () => {
    await killAll(children);
    await worker?.stop();
    redis.disconnect();
    queueRedis.disconnect();
    await servers.stop();
  });

  const input = () => replicationInput(servers, { producer: { ...LEASE } });

  it('keeps the lease through a full resync longer than its TTL; a leader killed during the RDB transfer is replaced', async () => {
    worker = await startPipeline(input(), { producer: false, worker: true });
    const [leader, standby] = await racingProducers(input(), children);
    expect(await fenceNumber(queueRedis)).toBe(1);
    // PSYNC alone waited out repl-diskless-sync-delay (5 s), far past the 1.5 s TTL: still the first tenure.
    await waitFor('the snapshot transfer to begin', async () => leader.output(), (o) => o.includes('receiving the snapshot'), 30000, 20);
    expect(leader.output()).not.toContain('snapshot enqueued');
    expect(await fenceNumber(queueRedis)).toBe(1);
    leader.kill('SIGKILL');

    await waitFor('the standby to take over', async () => leads(standby), Boolean, 30000);
    await waitFor('its snapshot enqueued', async () => standby.output(), (o) => o.includes('full resynchronization: snapshot enqueued'), 60000);
    // Its own long start did not cost it the lease either.
    expect(await fenceNumber(queueRedis)).toBe(2);
    const done = JSON.parse(standby.output().split('\n').find((l) => l.includes('snapshot enqueued')) ?? '{}') as { bytes?: number; keys?: number };
    // LZF shrinks the repeated values: what travelled is the compressed RDB.
    expect(done.bytes).toBeGreaterThan(0);
    expect(done.keys).toBeGreaterThanOrEqual(20000);
    await expectNothingMissing(worker);
    expect(await queueRedis.hget(checkpointKey('redis-es-sync'), 'offset')).not.toBeNull();
  });

  it('a leader frozen past its TTL mid-burst: the new leader continues from the last fenced checkpoint', async () => {
    await killAll(children);
    const [leader, standby] = await racingProducers(input(), children);
    const before = await fenceNumber(queueRedis);
    await waitFor('the leader to follow the stream', async () => leader.output(), (o) => o.includes('"resync":"continue"') || o.includes('snapshot enqueued'), 60000);
    await waitFor('a checkpoint', () => queueRedis.hget(checkpointKey('redis-es-sync'), 'offset'), (o) => o !== null, 30000);

    await burstWithPausedLeader({ rounds: 3000, pauseAt: 1000, round: round(redis), leader, standby });
    expect(await fenceNumber(queueRedis)).toBe(before + 1);
    expect(standby.output()).toContain('continuing after the last checkpoint');
    await waitFor('the old leader to step down', async () => steppedDown(leader), Boolean, 30000);
    await expectNothingMissing(worker!);
    expect(await fenceNumber(queueRedis)).toBe(before + 1);
  });
});

describe('replication across a restart of the queue Redis', () => {
  let dirs: string[] = [];
  let source: RedisServerHandle;
  let queue: RedisServerHandle;
  let redis: Redis;
  let queueRedis: Redis;
  let worker: TestPipeline | undefined;
  const children: Cli[] = [];
  // The queue keeps what it acknowledged (jobs, checkpoint, fencing counter) across the restart.
  const queueArgs = (dir: string): string[] => ['--dir', dir, '--appendonly', 'yes', '--appendfsync', 'always'];

  beforeAll(async () => {
    dirs = [await mkdtemp(join(tmpdir(), 'res-repl-')), await mkdtemp(join(tmpdir(), 'res-queue-'))];
    [source, queue] = await Promise.all([startRedis({ args: ['--dir', dirs[0]] }), startRedis({ args: queueArgs(dirs[1]) })]);
    redis = new Redis(source.url);
    queueRedis = new Redis(queue.url);
    await seedLarge(redis, 2000);
  });

  afterAll(async () => {
    await killAll(children);
    await worker?.stop();
    redis.disconnect();
    queueRedis.disconnect();
    await Promise.all([source.stop(), queue.stop()]);
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it('the lease lost while the queue Redis was down: the next tenure resumes from a checkpoint that skips nothing', async () => {
    const servers: TestServers = { source, queue, index: uniqueIndex('repl-queue-restart'), stop: () => Promise.resolve() };
    const input = replicationInput(servers, { producer: { ...LEASE } });
    worker = await startPipeline(input, { producer: false, worker: true });
    const [leader] = await racingProducers(input, children);
    await waitFor('the snapshot enqueued', async () => leader.output(), (o) => o.includes('snapshot enqueued'), 60000);
    const write = round(redis);
    for (let i = 0; i < 1000; i++) await write(i);
    // Down for longer than the lease TTL while writes go on: every producer's lease is gone when it is back.
    await queue.stop();
    for (let i = 1000; i < 1600; i++) {
      await write(i);
      await new Promise((r) => setTimeout(r, 5));
    }
    queue = await startRedis({ port: queue.port, args: queueArgs(dirs[1]) });
    for (let i = 1600; i < 3000; i++) await write(i);

    await waitFor('a new tenure', () => fenceNumber(queueRedis), (n) => n >= 2, 30000);
    await waitFor('a producer to capture again', async () => children.map((c) => c.output().split('capture started under the lease').length - 1), (n) => n[0] + n[1] >= 2, 30000);
    await expectNothingMissing(worker);
  });
});
