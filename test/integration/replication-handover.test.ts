import type { Redis } from 'ioredis';
import { checkpointKey } from '../../producers/capture/replication/checkpoint';
import {
  burstAcrossQueueRestart,
  burstWithPausedLeader,
  fenceNumber,
  HandoverFixture,
  killAll,
  LEASE,
  leads,
  racingProducers,
  restartableQueueServers,
  steppedDown,
} from '../support/handover';
import { startPipeline, waitFor } from '../support/pipeline';
import { replicationInput, replicationServers } from '../support/replication';

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
    const p = redis
      .pipeline()
      .hset(`user:${i % 300}`, { n: String(i) })
      .set(`seq:${i % 3000}`, String(i));
    if (i % 7 === 0) p.del(`user:${(i * 13) % 300}`);
    if (i % 11 === 0) p.del(`big:${i % 20000}`);
    return p.exec();
  };

describe('replication hand-over, on the source’s default replication settings', () => {
  const f = new HandoverFixture(
    () => replicationServers('repl-handover'),
    (redis) => seedLarge(redis, 20000),
  );
  const input = () => replicationInput(f.servers, { producer: { ...LEASE } });

  it('keeps the lease through a full resync longer than its TTL; a leader killed during the RDB transfer is replaced', async () => {
    f.worker = await startPipeline(input(), { producer: false, worker: true });
    const [leader, standby] = await racingProducers(input(), f.children);
    expect(await fenceNumber(f.queueRedis)).toBe(1);
    // PSYNC alone waited out repl-diskless-sync-delay (5 s), far past the 1.5 s TTL: still the first tenure.
    await waitFor(
      'the snapshot transfer to begin',
      async () => leader.output(),
      (o) => o.includes('receiving the snapshot'),
      30000,
      20,
    );
    expect(leader.output()).not.toContain('snapshot enqueued');
    expect(await fenceNumber(f.queueRedis)).toBe(1);
    leader.kill('SIGKILL');

    await waitFor('the standby to take over', async () => leads(standby), Boolean, 30000);
    await waitFor(
      'its snapshot enqueued',
      async () => standby.output(),
      (o) => o.includes('full resynchronization: snapshot enqueued'),
      60000,
    );
    // Its own long start did not cost it the lease either.
    expect(await fenceNumber(f.queueRedis)).toBe(2);
    const done = JSON.parse(
      standby
        .output()
        .split('\n')
        .find((l) => l.includes('snapshot enqueued')) ?? '{}',
    ) as { bytes?: number; keys?: number };
    // LZF shrinks the repeated values: what travelled is the compressed RDB.
    expect(done.bytes).toBeGreaterThan(0);
    expect(done.keys).toBeGreaterThanOrEqual(20000);
    await f.expectNothingMissing();
    expect(await f.queueRedis.hget(checkpointKey('redis-es-sync'), 'offset')).not.toBeNull();
  });

  it('a leader frozen past its TTL mid-burst: the new leader continues from the last fenced checkpoint', async () => {
    await killAll(f.children);
    const [leader, standby] = await racingProducers(input(), f.children);
    const before = await fenceNumber(f.queueRedis);
    await waitFor(
      'the leader to follow the stream',
      async () => leader.output(),
      (o) => o.includes('"resync":"continue"') || o.includes('snapshot enqueued'),
      60000,
    );
    await waitFor(
      'a checkpoint',
      () => f.queueRedis.hget(checkpointKey('redis-es-sync'), 'offset'),
      (o) => o !== null,
      30000,
    );

    await burstWithPausedLeader({ rounds: 3000, pauseAt: 1000, round: round(f.redis), leader, standby });
    expect(await fenceNumber(f.queueRedis)).toBe(before + 1);
    expect(standby.output()).toContain('continuing after the last checkpoint');
    await waitFor('the old leader to step down', async () => steppedDown(leader), Boolean, 30000);
    await f.expectNothingMissing();
    expect(await fenceNumber(f.queueRedis)).toBe(before + 1);
  });
});

describe('replication across a restart of the queue Redis', () => {
  const f = new HandoverFixture(
    () => restartableQueueServers('repl-queue-restart', { notify: false }),
    (redis) => seedLarge(redis, 2000),
  );

  it('the lease lost while the queue Redis was down: the next tenure resumes from a checkpoint that skips nothing', async () => {
    const input = replicationInput(f.servers, { producer: { ...LEASE } });
    f.worker = await startPipeline(input, { producer: false, worker: true });
    const [leader] = await racingProducers(input, f.children);
    await waitFor(
      'the snapshot enqueued',
      async () => leader.output(),
      (o) => o.includes('snapshot enqueued'),
      60000,
    );
    await burstAcrossQueueRestart({
      servers: f.servers,
      queueRedis: f.queueRedis,
      round: round(f.redis),
      children: f.children,
    });
    await f.expectNothingMissing();
  });
});
