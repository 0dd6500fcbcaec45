import type { Redis } from 'ioredis';
import type { Logger } from '../shared/logger';
import type { Progress } from '../shared/progress';
import { isOwnKey, type CaptureSource } from '../shared/queue';
import type { RedisDbPool } from '../shared/redis';
import type { ChangeSink } from './change-sink';

export interface SnapshotOptions {
  databases: readonly number[];
  patterns: readonly string[];
  scanCount: number;
  batchKeys: number;
  prefix: string;
  /** Continue from the saved cursors of an interrupted snapshot instead of starting over. */
  resume: boolean;
  src: CaptureSource;
  progress?: Progress;
  signal?: AbortSignal;
}

export interface SnapshotDeps {
  source: RedisDbPool;
  /** Holds the resumable cursors. */
  queueRedis: Redis;
  sink: ChangeSink;
  logger: Logger;
}

export interface SnapshotResult {
  keys: number;
  jobs: number;
  aborted: boolean;
}

/**
 * SCANs every configured database and pattern and enqueues the keys, a job per batch.
 * After each SCAN page is enqueued its cursor is saved, so an interrupted snapshot resumes
 * where it stopped (`resume: true`) without missing a key.
 */
export async function snapshot(deps: SnapshotDeps, opts: SnapshotOptions): Promise<SnapshotResult> {
  const cursorsKey = `${opts.prefix}:cursors:${opts.src}`;
  const result: SnapshotResult = { keys: 0, jobs: 0, aborted: false };
  if (!opts.resume) await deps.queueRedis.del(cursorsKey);
  if (opts.progress) {
    let total = 0;
    for (const db of opts.databases) total += await deps.source.db(db).dbsize();
    opts.progress.setTotal(total);
  }
  for (const db of opts.databases) {
    const redis = deps.source.db(db);
    for (const pattern of opts.patterns) {
      const field = `${db}:${pattern}`;
      let cursor = (opts.resume && (await deps.queueRedis.hget(cursorsKey, field))) || '0';
      if (cursor === 'done') continue;
      do {
        if (opts.signal?.aborted) {
          result.aborted = true;
          return result;
        }
        const [next, page] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', opts.scanCount);
        const keys = page.filter((k) => !isOwnKey(opts.prefix, k));
        for (let i = 0; i < keys.length; i += opts.batchKeys) {
          result.keys += await deps.sink.enqueueKeys(db, keys.slice(i, i + opts.batchKeys), opts.src);
          result.jobs++;
        }
        opts.progress?.increment(page.length);
        cursor = next;
        await deps.queueRedis.hset(cursorsKey, field, cursor === '0' ? 'done' : cursor);
      } while (cursor !== '0');
    }
  }
  await deps.queueRedis.del(cursorsKey);
  deps.logger.debug({ keys: result.keys, jobs: result.jobs }, 'snapshot enqueued');
  return result;
}
