import { backoffDelay, jittered, REDIS_LOOP, REDIS_RECONNECT, type Backoff } from '../../../../shared/platform/retry';

describe('backoffDelay', () => {
  it('doubles from the base up to the cap', () => {
    const policy: Backoff = { baseMs: 100, maxMs: 1000, maxDoublings: 10 };
    expect([0, 1, 2, 3, 4, 5].map((n) => backoffDelay(policy, n))).toEqual([100, 200, 400, 800, 1000, 1000]);
  });

  it('stops doubling after maxDoublings, so a long outage never overflows', () => {
    const policy: Backoff = { baseMs: 1, maxMs: Number.MAX_VALUE, maxDoublings: 3 };
    expect(backoffDelay(policy, 3)).toBe(8);
    expect(backoffDelay(policy, 1e9)).toBe(8);
  });

  it('keeps the schedules the loops had: ioredis reconnects 200 ms … 5 s, Redis loops 200 ms … 10 s', () => {
    expect([1, 2, 5, 6, 100].map((n) => backoffDelay(REDIS_RECONNECT, n))).toEqual([200, 400, 3200, 5000, 5000]);
    expect([1, 2, 6, 7, 100].map((n) => backoffDelay(REDIS_LOOP, n))).toEqual([200, 400, 6400, 10000, 10000]);
  });
});

describe('jittered', () => {
  it('stays between half the delay and the delay', () => {
    for (let i = 0; i < 100; i++) {
      const d = jittered(1000);
      expect(d).toBeGreaterThanOrEqual(500);
      expect(d).toBeLessThanOrEqual(1000);
    }
  });
});
