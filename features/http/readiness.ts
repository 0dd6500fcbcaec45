import type { RedisClient } from '../../shared/platform/redis';
import type { Sink } from '../../shared/sink/port';

/** One dependency `/readyz` checks; `check` rejects when it is unreachable. */
export interface ReadinessCheck {
  name: string;
  check(): Promise<unknown>;
}

/** Per check: `ok`, or why it failed. */
export type CheckResults = Record<string, string>;

/** A check that answers slower than this counts as down: probes must answer quickly. */
const CHECK_TIMEOUT_MS = 2000;

export function redisCheck(name: string, redis: () => RedisClient): ReadinessCheck {
  return { name, check: () => redis().ping() };
}

/** The search engine answers its adapter's health call (one bounded round trip). */
export function elasticsearchCheck(sink: Sink): ReadinessCheck {
  return { name: 'elasticsearch', check: () => sink.health(CHECK_TIMEOUT_MS) };
}

/**
 * A paused queue is a process that indexes nothing: not ready, so an orchestrator and its
 * alerts see it, while /healthz stays up (restarting would not resume it).
 */
export function queueNotPausedCheck(queue: { isPaused(): Promise<boolean> }): ReadinessCheck {
  return {
    name: 'queue',
    check: async () => {
      if (await queue.isPaused())
        throw new Error('the queue is paused: workers take no job (resume it on the dashboard or with BullMQ)');
    },
  };
}

/** Runs every check at once, each bounded by a timeout. */
export async function runChecks(checks: readonly ReadinessCheck[]): Promise<{ ok: boolean; checks: CheckResults }> {
  const results: CheckResults = {};
  await Promise.all(
    checks.map(async (c) => {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${CHECK_TIMEOUT_MS} ms`)), CHECK_TIMEOUT_MS);
      });
      try {
        await Promise.race([c.check(), timeout]);
        results[c.name] = 'ok';
      } catch (err) {
        results[c.name] = err instanceof Error ? err.message : String(err);
      } finally {
        clearTimeout(timer);
      }
    }),
  );
  return { ok: Object.values(results).every((r) => r === 'ok'), checks: results };
}
