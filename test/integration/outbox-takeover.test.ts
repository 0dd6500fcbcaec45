import type { ConfigInput } from '../../producers/capture/registry';
import { HandoverFixture, killAll, LEASE, leads, racingProducers, steppedDown } from '../support/handover';
import { GROUP, outboxDrained, pendingCount, startOutboxServers, STREAM, writeWithEntry } from '../support/outbox';
import { getDoc, startPipeline, testConfigInput, waitFor } from '../support/pipeline';

/** Far beyond the test's length: whatever is taken over here was not taken over for being idle. */
const CLAIM_IDLE_MS = 600000;

/** The entries of a consumer group's consumer, as the test reads them in its stead. */
async function deliverTo(f: HandoverFixture, consumer: string, count: number): Promise<number> {
  const reply = (await f.redis.xreadgroup('GROUP', GROUP, consumer, 'COUNT', count, 'STREAMS', STREAM, '>')) as
    [string, unknown[]][] | null;
  return reply?.[0]?.[1].length ?? 0;
}

describe('outbox mode: a new lease holder takes over the pending entries of the one it replaced', () => {
  const f = new HandoverFixture(() => startOutboxServers('outbox-takeover'));
  const input = (consumer: string): ConfigInput =>
    testConfigInput(f.servers, {
      producer: { ...LEASE, mode: 'outbox', outbox: { consumer, blockMs: 200, claimIdleMs: CLAIM_IDLE_MS } },
    });

  it('at once, not after claimIdleMs; a consumer that never held the lease keeps its entries', async () => {
    f.worker = await startPipeline(testConfigInput(f.servers), { producer: false, worker: true });
    const [leader, standby] = await racingProducers([input('producer-a'), input('producer-b')], f.children);
    const [held, next] = leader.output().includes('"consumer":"producer-a"')
      ? ['producer-a', 'producer-b']
      : ['producer-b', 'producer-a'];
    await writeWithEntry(f.redis, 'warm-up');
    await waitFor('the leader to handle an entry', () => outboxDrained(f.redis), Boolean, 30000, 100);

    leader.kill('SIGSTOP');
    // A read it had blocked in may still be served while it is frozen: give it the first entry.
    await writeWithEntry(f.redis, 'first-while-frozen');
    await new Promise((r) => setTimeout(r, 300));
    // Another deployment's consumer (or a producer run without the lease): alive as far as this lease knows.
    for (let i = 0; i < 5; i++) await f.redis.xadd(STREAM, '*', 'key', `never-written:${i}`);
    expect(await deliverTo(f, 'foreign', 5)).toBe(5);
    // What the frozen leader had been given and not acknowledged when it lost the lease.
    for (let i = 0; i < 200; i++) await writeWithEntry(f.redis, `t:${i}`);
    expect(await deliverTo(f, held, 150)).toBe(150);
    expect(await pendingCount(f.redis, held)).toBeGreaterThanOrEqual(150);

    await waitFor('the standby to take over', async () => leads(standby), Boolean, 30000);
    await waitFor(
      'the frozen leader’s entries taken over',
      () => pendingCount(f.redis, held),
      (n) => n === 0,
      30000,
      100,
    );
    await waitFor(
      'the takeover logged',
      async () => standby.output(),
      (o) => o.includes('took over the pending entries of an earlier lease holder'),
      10000,
    );
    expect(await pendingCount(f.redis, 'foreign')).toBe(5);
    // Both consumers are on record with the fencing number they led under.
    expect(await f.queueRedis.hgetall(`redis-es-sync:outbox:holders:${STREAM}:${GROUP}`)).toEqual({
      [held]: '1',
      [next]: '2',
    });

    leader.kill('SIGCONT');
    await waitFor('the old leader to step down', async () => steppedDown(leader), Boolean, 30000);
    await writeWithEntry(f.redis, 'after-the-hand-over');
    await waitFor(
      'everything but the foreign entries acknowledged',
      () => outboxDrained(f.redis, 5),
      Boolean,
      30000,
      200,
    );
    expect(await pendingCount(f.redis, held)).toBe(0);
    await f.expectNothingMissing();
  });

  it('a reconciliation the group’s creator did not finish is owed to the next tenure, which runs it', async () => {
    await killAll(f.children);
    const state = `redis-es-sync:outbox:state:${STREAM}:${GROUP}`;
    // The creator's own pass completed while it led.
    expect(await f.queueRedis.hget(state, 'reconcile')).toBe('done');
    // As if it had been replaced before that pass completed: a key written before the group, without an entry.
    await f.redis.set('before-the-group', 'only a reconciliation finds me');
    await f.queueRedis.hset(state, 'reconcile', 'owed');
    const [leader] = await racingProducers([input('producer-a'), input('producer-b')], f.children);
    expect(leader.output()).toContain(
      'reconciling, as an earlier tenure that created the group did not finish its reconciliation',
    );
    await waitFor(
      'the key found by the reconciliation',
      () => getDoc(f.worker!.ctx, f.servers.index, 'before-the-group'),
      (d) => d !== undefined,
      30000,
      100,
    );
    await waitFor(
      'the reconciliation recorded as done',
      () => f.queueRedis.hget(state, 'reconcile'),
      (v) => v === 'done',
      30000,
      100,
    );
    await f.expectNothingMissing();
  });
});
