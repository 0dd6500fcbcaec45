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

/** The checkpoint of a standalone source, or of one Cluster master (by its node ID). */
export function checkpointKey(prefix: string, node?: string): string {
  return node === undefined ? `${prefix}:replication:checkpoint` : `${prefix}:replication:checkpoint:${node}`;
}

/** The node IDs of the Cluster masters that have a checkpoint: where a promoted master looks for its history. */
export function checkpointIndexKey(prefix: string): string {
  return `${prefix}:replication:checkpoints`;
}

/** Parses a saved checkpoint; anything malformed counts as none (a full resync). */
function parse(h: Record<string, string>): StreamPosition | undefined {
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
    /** For a Cluster master: the index that lists it, so a master promoted later finds its history. */
    private readonly index?: { key: string; node: string },
  ) {}

  async load(): Promise<StreamPosition | undefined> {
    return parse(await this.redis.hgetall(this.key));
  }

  async save(p: StreamPosition): Promise<void> {
    await this.fence.hset(this.key, {
      replid: p.replid,
      offset: String(p.offset),
      db: String(p.db),
      savedAt: String(Date.now()),
    });
    // Only a directory of checkpoint keys, never a position: an unfenced write cannot move what a checkpoint vouches for.
    if (this.index) await this.redis.sadd(this.index.key, this.index.node);
  }
}

/** A master's replication history (INFO replication): its id, and the id it continued from with how far that holds. */
export interface ReplicationHistory {
  replid: string;
  replid2: string;
  /** The last offset + 1 up to which PSYNC with `replid2` is accepted (-1: none). */
  secondOffset: number;
}

const NO_REPLID = '0'.repeat(40);

/** Whether a master can continue a stream from `p`, as far as its history tells (the master decides at PSYNC). */
export function inHistory(p: StreamPosition, h: ReplicationHistory): boolean {
  if (p.replid === h.replid) return true;
  return p.replid === h.replid2 && h.replid2 !== NO_REPLID && p.offset + 1 <= h.secondOffset;
}

/**
 * The furthest checkpoint, of any master the index lists, that lies in this master's history:
 * a replica promoted by failover took its old master's replication id as `replid2`, so the
 * old master's checkpoint lets the new one continue the stream (offsets continue across ids).
 */
export async function inheritedPosition(
  redis: RedisClient,
  prefix: string,
  history: ReplicationHistory,
): Promise<{ node: string; position: StreamPosition } | undefined> {
  const nodes = await redis.smembers(checkpointIndexKey(prefix));
  let best: { node: string; position: StreamPosition } | undefined;
  for (const node of nodes) {
    const position = parse(await redis.hgetall(checkpointKey(prefix, node)));
    if (position === undefined || !inHistory(position, history)) continue;
    if (best === undefined || position.offset > best.position.offset) best = { node, position };
  }
  return best;
}

/** Parses INFO replication's master_replid, master_replid2 and second_repl_offset. */
export function parseHistory(info: string): ReplicationHistory | undefined {
  const field = (name: string): string | undefined => new RegExp(`^${name}:(\\S+)`, 'm').exec(info)?.[1];
  const replid = field('master_replid');
  const replid2 = field('master_replid2');
  const second = Number(field('second_repl_offset'));
  if (replid === undefined || replid2 === undefined || !Number.isSafeInteger(second)) return undefined;
  return { replid, replid2, secondOffset: second };
}
