import type { RedisClient } from '../platform/redis';

// INCRBY, but never below wall-clock microseconds: if the counter is lost (a queue Redis
// without persistence restarted), new versions still land above every version already in
// Elasticsearch instead of being rejected as conflicts forever. The counter only moves up.
const ALLOCATE_LUA = `
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
local floor = tonumber(ARGV[1])
if cur < floor then redis.call('SET', KEYS[1], ARGV[1]) end
return redis.call('INCRBY', KEYS[1], ARGV[2])
`;

type VersionRedis = RedisClient & {
  resEsAllocateVersions(key: string, floor: string, count: number): Promise<number>;
};

/**
 * The one atomic counter every version comes from. Versions increase in real-time order
 * across all producers and workers that share the queue Redis, which is what lets
 * Elasticsearch's external versioning order writes.
 */
export class VersionCounter {
  private readonly redis: VersionRedis;

  constructor(
    redis: RedisClient,
    readonly key: string,
    private readonly now: () => number = Date.now,
  ) {
    this.redis = redis as VersionRedis;
    if (typeof this.redis.resEsAllocateVersions !== 'function') {
      redis.defineCommand('resEsAllocateVersions', { numberOfKeys: 1, lua: ALLOCATE_LUA });
    }
  }

  /** Reserves `count` consecutive versions and returns the first. */
  async allocate(count: number): Promise<number> {
    if (count < 1) throw new RangeError('count must be at least 1');
    const floor = String(this.now() * 1000);
    const last = await this.redis.resEsAllocateVersions(this.key, floor, count);
    return last - count + 1;
  }
}

/** Under the prefix, so with a hash-tagged prefix it shares the queue's cluster slot. */
export function versionKey(prefix: string): string {
  return `${prefix}:version`;
}
