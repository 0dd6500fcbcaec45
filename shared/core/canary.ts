import type { AppConfig } from '../platform/config/schema';
import type { RedisClient } from '../platform/redis';

/**
 * The freshness canary's shared vocabulary: which keys are heartbeats (the router sends them to
 * their own index, verify and status leave them out), and the record of each shard's last
 * measurement in the queue Redis, written by the producer that measures it and read by `status`.
 */
export interface CanarySettings {
  keyPrefix: string;
  index: string;
}

/** The canary's routing when it is on; undefined when off (its keys are then ordinary keys). */
export function canarySettings(config: Pick<AppConfig, 'producer' | 'mapping'>): CanarySettings | undefined {
  const { enabled, keyPrefix } = config.producer.canary;
  return enabled ? { keyPrefix, index: canaryIndex(config) } : undefined;
}

/** The heartbeats' index: the configured one, else one beside the default index (one per deployment). */
export function canaryIndex(config: Pick<AppConfig, 'producer' | 'mapping'>): string {
  return config.producer.canary.index ?? `${config.mapping.defaultIndex}-canary`;
}

export function isCanaryKey(settings: CanarySettings | undefined, key: string): boolean {
  return settings !== undefined && key.startsWith(settings.keyPrefix);
}

/** One shard's last measurement (times in ms since epoch, the measuring producer's clock). */
export interface FreshnessRecord {
  /** The Cluster master's node ID; `source` for a standalone or Sentinel source. */
  shard: string;
  key: string;
  /** What the gauge shows: the latency of the newest heartbeat found searchable, or the age of the oldest not yet found. */
  freshnessMs: number;
  /** When the newest heartbeat found searchable was written; undefined before the first. */
  seenWrittenAt?: number;
  /** When this record was written: a record that stops moving belongs to a canary that stopped. */
  measuredAt: number;
}

export function freshnessKey(prefix: string): string {
  return `${prefix}:canary:freshness`;
}

export async function writeFreshness(redis: RedisClient, prefix: string, rec: FreshnessRecord): Promise<void> {
  await redis.hset(freshnessKey(prefix), rec.shard, JSON.stringify(rec));
}

export async function readFreshness(redis: RedisClient, prefix: string): Promise<FreshnessRecord[]> {
  const all = await redis.hgetall(freshnessKey(prefix));
  const out: FreshnessRecord[] = [];
  for (const [shard, text] of Object.entries(all)) {
    try {
      const v = JSON.parse(text) as Partial<FreshnessRecord>;
      if (typeof v.freshnessMs !== 'number' || typeof v.measuredAt !== 'number') continue;
      out.push({
        shard,
        key: typeof v.key === 'string' ? v.key : '',
        freshnessMs: v.freshnessMs,
        ...(typeof v.seenWrittenAt === 'number' ? { seenWrittenAt: v.seenWrittenAt } : {}),
        measuredAt: v.measuredAt,
      });
    } catch {
      // A field someone wrote by hand: not ours to interpret.
    }
  }
  return out.sort((a, b) => a.shard.localeCompare(b.shard));
}
