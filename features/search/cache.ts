import type { Logger } from '../../shared/platform/logger';
import type { RedisClient } from '../../shared/platform/redis';

export interface SearchCacheSettings {
  ttlMs: number;
  /** An answer larger than this (as JSON) is served but not cached. */
  maxEntryBytes: number;
  /** Cached answers together never hold more than this. */
  maxTotalBytes: number;
}

/**
 * Purges what expired (its sizes still counted), then stores the answer only if the total
 * stays within the cap. One script, so concurrent stores cannot together overshoot.
 * KEYS: entry, expiry index (zset: entry → expiry ms), sizes (hash: entry → bytes), total.
 * ARGV: value, ttl ms, now ms, cap bytes.
 */
const STORE = `
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[3], 'LIMIT', 0, 200)
for _, k in ipairs(expired) do
  local size = tonumber(redis.call('HGET', KEYS[3], k) or '0')
  redis.call('DECRBY', KEYS[4], size)
  redis.call('HDEL', KEYS[3], k)
  redis.call('ZREM', KEYS[2], k)
end
if redis.call('EXISTS', KEYS[1]) == 1 then return 1 end
local size = string.len(ARGV[1])
local total = tonumber(redis.call('GET', KEYS[4]) or '0')
if total < 0 then
  redis.call('SET', KEYS[4], 0)
  total = 0
end
if total + size > tonumber(ARGV[4]) then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('ZADD', KEYS[2], tonumber(ARGV[3]) + tonumber(ARGV[2]), KEYS[1])
redis.call('HSET', KEYS[3], KEYS[1], size)
redis.call('INCRBY', KEYS[4], size)
return 1
`;

export type StoreOutcome = 'stored' | 'too-large' | 'full' | 'error';

/**
 * The search cache: bounded per entry and in total, so it can never take the memory the
 * queue needs when it shares the queue Redis (which runs with noeviction, where a full
 * memory refuses the producer's enqueues). A cache Redis of its own (`search.cache.url`)
 * can use an eviction policy instead; the caps hold there too. A cache that fails only
 * costs speed: errors are logged and the answer comes from Elasticsearch.
 */
export class SearchCache {
  private readonly indexKey: string;
  private readonly sizesKey: string;
  private readonly totalKey: string;
  private lastError = '';

  constructor(
    private readonly redis: RedisClient,
    prefix: string,
    private readonly settings: SearchCacheSettings,
    private readonly logger: Logger,
  ) {
    // Under the prefix, so a clustered queue's hash tag puts them in the entries' slot.
    this.indexKey = `${prefix}:search-cache:expiry`;
    this.sizesKey = `${prefix}:search-cache:sizes`;
    this.totalKey = `${prefix}:search-cache:bytes`;
  }

  get enabled(): boolean {
    return this.settings.ttlMs > 0;
  }

  async get(key: string): Promise<string | null> {
    if (!this.enabled) return null;
    try {
      return await this.redis.get(key);
    } catch (err) {
      this.failed(err);
      return null;
    }
  }

  async set(key: string, value: string): Promise<StoreOutcome> {
    if (!this.enabled) return 'error';
    if (Buffer.byteLength(value) > this.settings.maxEntryBytes) return 'too-large';
    try {
      const stored = await this.redis.eval(
        STORE,
        4,
        key,
        this.indexKey,
        this.sizesKey,
        this.totalKey,
        value,
        this.settings.ttlMs,
        Date.now(),
        this.settings.maxTotalBytes,
      );
      return stored === 1 ? 'stored' : 'full';
    } catch (err) {
      this.failed(err);
      return 'error';
    }
  }

  /** Bytes the cache counts as held (for tests and the operator). */
  async totalBytes(): Promise<number> {
    return Number((await this.redis.get(this.totalKey)) ?? 0);
  }

  private failed(err: unknown): void {
    const message = err instanceof Error ? err.message : String(err);
    if (message !== this.lastError) this.logger.warn({ err }, 'search cache unavailable; answering from Elasticsearch');
    this.lastError = message;
  }
}
