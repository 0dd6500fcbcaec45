import type { Redis } from 'ioredis';
import { RedisSetupError } from '../../../shared/platform/errors';
import type { Logger } from '../../../shared/platform/logger';

/**
 * Keyevent notifications (E) for every class of change: generic (g: del, expire, rename…),
 * strings ($), lists (l), sets (s), hashes (h), sorted sets (z), expired (x), evicted (e),
 * streams (t).
 */
export const REQUIRED_NOTIFY_FLAGS = 'Eg$lshzxet';

/** `A` is Redis's alias for every class of change. */
const ALIAS_A = 'g$lshzxetd';

export function missingNotifyFlags(current: string): string[] {
  const have = new Set(current.replace(/A/g, ALIAS_A));
  return Array.from(REQUIRED_NOTIFY_FLAGS).filter((f) => !have.has(f));
}

/**
 * Makes sure the source sends the notifications we subscribe to: sets the missing flags when
 * allowed to, otherwise stops with an error that names them.
 */
export async function ensureNotifyFlags(redis: Redis, configure: boolean, logger: Logger): Promise<void> {
  let reply: string[];
  try {
    reply = await redis.config('GET', 'notify-keyspace-events');
  } catch (err) {
    if (!(err as Error).message.includes('NOPERM')) throw err;
    throw new RedisSetupError(
      `the source Redis user may not read notify-keyspace-events (${(err as Error).message}): grant it +config|get (docs/security.md, Redis ACL)`,
    );
  }
  const current = reply[1] ?? '';
  const missing = missingNotifyFlags(current);
  if (missing.length === 0) return;
  if (!configure) {
    throw new RedisSetupError(
      `the source Redis does not publish the keyspace events this tool needs: notify-keyspace-events is "${current}", ` +
        `missing flags "${missing.join('')}". Run CONFIG SET notify-keyspace-events ${current}${missing.join('')} ` +
        `(or put it in redis.conf), or start with producer.configureNotifications: true to let the tool set it.`,
    );
  }
  const wanted = current + missing.join('');
  await redis.config('SET', 'notify-keyspace-events', wanted);
  logger.warn({ before: current, after: wanted }, 'set notify-keyspace-events on the source Redis');
}
