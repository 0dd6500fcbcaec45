import type { Redis } from 'ioredis';
import type { ReplicationPosition } from './replica-link';

export function checkpointKey(prefix: string): string {
  return `${prefix}:replication:checkpoint`;
}

/**
 * Where the replication producer resumes: the master's replication id and the offset of the
 * last stream byte whose changes are durably in the queue. Kept in the queue Redis, beside
 * the jobs it vouches for.
 */
export class ReplicationCheckpoint {
  constructor(
    private readonly redis: Redis,
    private readonly key: string,
  ) {}

  async load(): Promise<ReplicationPosition | undefined> {
    const h = await this.redis.hgetall(this.key);
    if (h.replid === undefined || h.offset === undefined) return undefined;
    const offset = Number(h.offset);
    if (!/^[0-9a-f]{40}$/i.test(h.replid) || !Number.isSafeInteger(offset) || offset < 0) return undefined;
    return { replid: h.replid, offset };
  }

  async save(p: ReplicationPosition): Promise<void> {
    await this.redis.hset(this.key, { replid: p.replid, offset: String(p.offset), savedAt: String(Date.now()) });
  }
}
