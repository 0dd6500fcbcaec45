import type { ConfigInput } from '../../producers/capture/registry';
import {
  burstAcrossQueueRestart,
  burstWithPausedLeader,
  fenceNumber,
  HandoverFixture,
  killAll,
  LEASE,
  racingProducers,
  restartableQueueServers,
  steppedDown,
} from '../support/handover';
import { outboxDrained, STREAM } from '../support/outbox';
import { startPipeline, testConfigInput, waitFor } from '../support/pipeline';

/**
 * Hand-overs in the middle of a write burst, on the source's default settings: two producers
 * race for the lease, then the winner loses it, frozen past its TTL (SIGSTOP) or because the
 * queue Redis restarted, while writes go on. Nothing may be lost.
 */
describe.each([
  ['notifications', false],
  ['outbox', true],
] as const)('hand-over in %s mode', (mode, outbox) => {
  // The queue Redis runs as docs/operations.md says (appendonly yes), so it can be restarted without losing jobs.
  // Without notifications in outbox mode: the stream is the only way a change reaches the queue.
  const f = new HandoverFixture(() => restartableQueueServers(`handover-${mode}`, { notify: !outbox }));

  const input = (): ConfigInput =>
    testConfigInput(f.servers, {
      // claimIdleMs far beyond the test: entries the old leader held must be taken over at its replacement, not once idle.
      producer: { ...LEASE, mode, ...(outbox ? { outbox: { blockMs: 200, claimIdleMs: 600000 } } : {}) },
    });

  /** One round of the burst: a hash, a string, every 7th round a delete; in outbox mode each with its entry. */
  const round = (i: number): Promise<unknown> => {
    const user = `user:${i % 300}`;
    const gone = `user:${(i * 13) % 300}`;
    const seq = `seq:${i % 3000}`;
    if (!outbox) {
      const p = f.redis
        .pipeline()
        .hset(user, { n: String(i) })
        .set(seq, String(i));
      if (i % 7 === 0) p.del(gone);
      return p.exec();
    }
    const m = f.redis
      .multi()
      .hset(user, { n: String(i) })
      .set(seq, String(i))
      .xadd(STREAM, '*', 'key', user, 'key', seq);
    if (i % 7 === 0) m.del(gone).xadd(STREAM, '*', 'key', gone);
    return m.exec();
  };

  const drained = async (): Promise<void> => {
    if (outbox) await waitFor('the outbox drained', () => outboxDrained(f.redis), Boolean, 60000, 200);
  };

  it('a leader frozen past its TTL mid-burst hands over without losing a change', async () => {
    f.worker = await startPipeline(testConfigInput(f.servers), { producer: false, worker: true });
    const [leader, standby] = await racingProducers(input(), f.children);
    // The race had one winner: a single acquisition.
    expect(await fenceNumber(f.queueRedis)).toBe(1);

    await burstWithPausedLeader({ rounds: 3000, pauseAt: 1000, round, leader, standby });
    expect(await fenceNumber(f.queueRedis)).toBe(2);
    await waitFor('the old leader to step down', async () => steppedDown(leader), Boolean, 30000);
    // Woken with the lease gone, it enqueued and acknowledged nothing more, and stays standby.
    expect(leader.exitCode).toBeNull();
    // The takeover says what it does: notifications reconcile, the outbox resumes from its pending entries.
    expect(standby.output()).toContain(
      outbox ? "taking over earlier lease holders' pending entries" : 'reconciling to cover what came before',
    );
    if (outbox) expect(standby.output()).not.toContain('reconciling');

    await drained();
    await f.expectNothingMissing();
    expect(await fenceNumber(f.queueRedis)).toBe(2);
  });

  it('the lease lost mid-burst because the queue Redis restarted: nothing lost', async () => {
    await killAll(f.children);
    await racingProducers(input(), f.children);
    const before = await fenceNumber(f.queueRedis);
    await burstAcrossQueueRestart({ servers: f.servers, queueRedis: f.queueRedis, round, children: f.children });
    expect(await fenceNumber(f.queueRedis)).toBeGreaterThan(before);
    await drained();
    await f.expectNothingMissing();
  });
});
