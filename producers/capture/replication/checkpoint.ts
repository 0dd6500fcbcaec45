import type { RedisClient } from '../../../shared/platform/redis';
import type { Fence } from '../../lease';
import type { ReplicationPosition } from './replica-link';

/**
 * A stream position plus the database the stream had SELECTed there: after a partial resync
 * the master sends no SELECT until the database changes, so the replica must remember it.
 */
export interface StreamPosition extends ReplicationPosition {
  db: number;
}

export function checkpointKey(prefix: string): string {
  return `${prefix}:replication:checkpoint`;
}

/**
 * Where the replication producer resumes: the master's replication id and the offset of the
 * last stream byte whose changes are durably in the queue. Kept in the queue Redis, beside
 * the jobs it vouches for and the lease that fences its writes: a producer that lost the
 * lease cannot move it (save throws LeaseLostError and writes nothing).
 */
export class ReplicationCheckpoint {
  constructor(
    private readonly redis: RedisClient,
    private readonly key: string,
    private readonly fence: Fence,
  ) {}

  async load(): Promise<StreamPosition | undefined> {
    const h = await this.redis.hgetall(this.key);
    if (h.replid === undefined || h.offset === undefined || h.db === undefined) return undefined;
    const offset = Number(h.offset);
    const db = Number(h.db);
    if (
      !/^[0-9a-f]{40}$/i.test(h.replid) ||
      !Number.isSafeInteger(offset) ||
      offset < 0 ||
      !Number.isInteger(db) ||
      db < 0
    )
      return undefined;
    return { replid: h.replid, offset, db };
  }

  async save(p: StreamPosition): Promise<void> {
    await this.fence.hset(this.key, {
      replid: p.replid,
      offset: String(p.offset),
      db: String(p.db),
      savedAt: String(Date.now()),
    });
  }
}
