import type { RedisClient } from '../../shared/platform/redis';

/**
 * Per-index generation counters in the queue Redis. Workers bump an index's counter after
 * every bulk that touched it; the search cache puts the counter in its keys, so an answer
 * cached before a change was indexed is never found again once it has been.
 */
export function generationKey(prefix: string, index: string): string {
  return `${prefix}:gen:${index}`;
}

/**
 * Set for `refreshWindowMs` after each bump: until then Elasticsearch may not show the
 * bulk's documents to searches yet, so answers computed now are not cached.
 */
export function settlingKey(prefix: string, index: string): string {
  return `${prefix}:gen:${index}:settling`;
}

/** One INCR (and settling marker) per index, in one round trip. */
export async function bumpGenerations(
  redis: RedisClient,
  prefix: string,
  indices: Iterable<string>,
  refreshWindowMs: number,
): Promise<void> {
  const pipeline = redis.pipeline();
  let count = 0;
  for (const index of new Set(indices)) {
    pipeline.incr(generationKey(prefix, index));
    if (refreshWindowMs > 0) pipeline.set(settlingKey(prefix, index), '1', 'PX', refreshWindowMs);
    count++;
  }
  if (count === 0) return;
  const results = await pipeline.exec();
  const failed = results?.find(([err]) => err);
  if (failed?.[0]) throw failed[0];
}

/** The worker's after-write hook: answers cached before a bulk are never served after it. */
export function generationBumper(
  redis: RedisClient,
  prefix: string,
  refreshWindowMs: number,
): (indices: readonly string[]) => Promise<void> {
  return (indices) => bumpGenerations(redis, prefix, indices, refreshWindowMs);
}
