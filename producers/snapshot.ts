import { keyFromBytes } from '../shared/core/bytes';
import type { Logger } from '../shared/platform/logger';
import type { Progress } from '../shared/platform/progress';
import { isOwnKey, type CaptureSource } from '../shared/core/queue';
import { countKeys, type RedisClient, type SourceRedis } from '../shared/platform/redis';
import { topologyHeldStill } from '../shared/platform/redis-cluster';
import type { ChangeSink } from './change-sink';
import { unfenced, type Fence } from './lease';
import { sleep } from '../shared/platform/sleep';

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
  source: SourceRedis;
  /** Holds the resumable cursors. */
  queueRedis: RedisClient;
  sink: ChangeSink;
  logger: Logger;
  /** Cursor writes go through the producer lease when there is one. */
  fence?: Fence;
}

export interface SnapshotResult {
  keys: number;
  jobs: number;
  aborted: boolean;
}

/**
 * SCANs every configured database and pattern on every master and enqueues the keys, a job
 * per batch. After each SCAN page is enqueued its cursor is saved, so an interrupted snapshot
 * resumes where it stopped (`resume: true`) without missing a key. On a Redis Cluster, a key
 * moved by resharding while the masters are scanned one after the other could be missed on
 * both, so the pass is repeated until the topology held still from its start to its end.
 */
export async function snapshot(deps: SnapshotDeps, opts: SnapshotOptions): Promise<SnapshotResult> {
  const cursorsKey = `${opts.prefix}:cursors:${opts.src}`;
  const result: SnapshotResult = { keys: 0, jobs: 0, aborted: false };
  let resume = opts.resume;
  for (let pass = 1; ; pass++) {
    if (!resume) await deps.queueRedis.del(cursorsKey);
    const before = await deps.source.topology();
    if (!(await scanPass(deps, opts, cursorsKey, resume, result))) {
      result.aborted = true;
      return result;
    }
    const after = await deps.source.topology();
    if (topologyHeldStill(before, after)) break;
    deps.logger.warn({ pass }, 'the cluster topology changed during the scan (failover or resharding); scanning again');
    resume = false;
    await sleep(500);
  }
  await deps.queueRedis.del(cursorsKey);
  deps.logger.debug({ keys: result.keys, jobs: result.jobs }, 'snapshot enqueued');
  return result;
}

/** One SCAN of every master; false when aborted. */
async function scanPass(
  deps: SnapshotDeps,
  opts: SnapshotOptions,
  cursorsKey: string,
  resume: boolean,
  result: SnapshotResult,
): Promise<boolean> {
  if (opts.progress) opts.progress.setTotal(await countKeys(deps.source, opts.databases));
  for (const db of opts.databases) {
    for (const node of await deps.source.masters(db)) {
      for (const pattern of opts.patterns) {
        const field = `${node.id ? `${node.id}/` : ''}${db}:${pattern}`;
        let cursor = (resume ? await deps.queueRedis.hget(cursorsKey, field) : null) ?? '0';
        if (cursor === 'done') continue;
        do {
          if (opts.signal?.aborted) return false;
          await deps.sink.waitForRoom(opts.signal);
          if (opts.signal?.aborted) return false;
          // Buffers: a key name that is not UTF-8 would lose its bytes as text.
          const [nextBytes, page] = await node.client.scanBuffer(cursor, 'MATCH', pattern, 'COUNT', opts.scanCount);
          const next = nextBytes.toString('latin1');
          const keys = page.map(keyFromBytes).filter((k) => !isOwnKey(opts.prefix, k));
          // The whole page at once: jobs of at most batchKeys keys, one round trip for them all.
          const enqueued = await deps.sink.enqueueBatch(db, keys, opts.src, opts.batchKeys);
          result.keys += enqueued.keys;
          result.jobs += enqueued.jobs;
          opts.progress?.increment(page.length);
          cursor = next;
          await (deps.fence ?? unfenced(deps.queueRedis)).hset(cursorsKey, {
            [field]: cursor === '0' ? 'done' : cursor,
          });
        } while (cursor !== '0');
      }
    }
  }
  return true;
}
