import { Redis } from 'ioredis';
import type { ConfigInput } from '../../shared/platform/config/schema';
import { unfinishedJobs } from '../../shared/core/queue';
import { burstWithPausedLeader, fenceNumber, killAll, LEASE, racingProducers, steppedDown, type Cli } from '../support/handover';
import { outboxDrained, startOutboxServers, STREAM } from '../support/outbox';
import { startPipeline, startServers, testConfigInput, verifyNow, waitFor, waitInSync, type TestPipeline, type TestServers } from '../support/pipeline';

/**
 * A hand-over in the middle of a write burst: two producers race for the lease, the winner is
 * frozen past its TTL while writes go on, the standby takes over, and the old leader wakes up
 * with changes it captured but may no longer enqueue or acknowledge. Nothing may be lost.
 */
describe.each([
  ['notifications', false],
  ['outbox', true],
] as const)('hand-over in %s mode', (mode, outbox) => {
  let servers: TestServers;
  let redis: Redis;
  let queueRedis: Redis;
  let worker: TestPipeline | undefined;
  const children: Cli[] = [];

  beforeAll(async () => {
    servers = outbox ? await startOutboxServers(`handover-${mode}`) : await startServers(`handover-${mode}`);
    redis = new Redis(servers.source.url);
    queueRedis = new Redis(servers.queue.url);
  });

  afterAll(async () => {
    await killAll(children);
    await worker?.stop();
    redis.disconnect();
    queueRedis.disconnect();
    await servers.stop();
  });

  const input = (): ConfigInput =>
    testConfigInput(servers, {
      producer: { ...LEASE, mode, ...(outbox ? { outbox: { blockMs: 200, claimIdleMs: 2000 } } : {}) },
    });

  /** One round of the burst: a hash, a string, every 7th round a delete; in outbox mode each with its entry. */
  const round = (i: number): Promise<unknown> => {
    const user = `user:${i % 300}`;
    const gone = `user:${(i * 13) % 300}`;
    const seq = `seq:${i % 3000}`;
    if (!outbox) {
      const p = redis.pipeline().hset(user, { n: String(i) }).set(seq, String(i));
      if (i % 7 === 0) p.del(gone);
      return p.exec();
    }
    const m = redis.multi().hset(user, { n: String(i) }).set(seq, String(i)).xadd(STREAM, '*', 'key', user, 'key', seq);
    if (i % 7 === 0) m.del(gone).xadd(STREAM, '*', 'key', gone);
    return m.exec();
  };

  it('a leader frozen past its TTL mid-burst hands over without losing a change', async () => {
    worker = await startPipeline(testConfigInput(servers), { producer: false, worker: true });
    const [leader, standby] = await racingProducers(input(), children);
    // The race had one winner: a single acquisition.
    expect(await fenceNumber(queueRedis)).toBe(1);

    await burstWithPausedLeader({ rounds: 3000, pauseAt: 1000, round, leader, standby });
    expect(await fenceNumber(queueRedis)).toBe(2);
    await waitFor('the old leader to step down', async () => steppedDown(leader), Boolean, 30000);
    // Woken with the lease gone, it enqueued and acknowledged nothing more, and stays standby.
    expect(leader.exitCode).toBeNull();

    if (outbox) await waitFor('the outbox drained', () => outboxDrained(redis), Boolean, 60000, 200);
    await waitFor('the queue drained', () => unfinishedJobs(worker!.ctx.queue()), (n) => n === 0, 60000, 200);
    await waitInSync(worker.ctx, 90000);
    const report = await verifyNow(worker.ctx);
    expect(report.missing).toEqual([]);
    expect(report.stale).toEqual([]);
    expect(await fenceNumber(queueRedis)).toBe(2);
  });
});
