/**
 * The one backoff formula: the delay doubles with every failure from `baseMs` up to `maxMs`.
 * `maxDoublings` caps the exponent so `2 ** n` stays finite however long an outage lasts; with
 * it each loop keeps the exact schedule it had when it carried its own formula.
 */
export interface Backoff {
  baseMs: number;
  maxMs: number;
  maxDoublings: number;
}

/** The delay before retry number `attempt` (0: the first retry waits `baseMs`). */
export function backoffDelay(policy: Backoff, attempt: number): number {
  return Math.min(policy.baseMs * 2 ** Math.min(Math.max(attempt, 0), policy.maxDoublings), policy.maxMs);
}

/** Between half the delay and all of it, so many clients failing together do not retry in step. */
export function jittered(delayMs: number): number {
  return delayMs / 2 + Math.random() * (delayMs / 2);
}

/** ioredis reconnects (standalone, Sentinel and each Cluster node): 200 ms, 400 ms, … up to 5 s. */
export const REDIS_RECONNECT: Backoff = { baseMs: 100, maxMs: 5000, maxDoublings: 8 };

/** A loop over the queue or source Redis that failed (enqueue, outbox read): 200 ms … 10 s. */
export const REDIS_LOOP: Backoff = { baseMs: 100, maxMs: 10_000, maxDoublings: 7 };
