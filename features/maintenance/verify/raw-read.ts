import type { RedisClient } from '../../../shared/platform/redis';

/**
 * What verify reads from Redis, on its own: plain commands, replies kept as the bytes Redis
 * sent. It shares nothing with the worker's read (shared/core/key-state.ts), so a bug there (a lossy
 * decode, a dropped field, a reordered entry) shows up as a difference instead of being
 * repeated on both sides of the comparison.
 */
export type RawState =
  | { exists: false }
  /** The key changed type between verify's two reads: compare it again later. */
  | { exists: true; changing: true }
  | ({ exists: true; changing?: false; hasTtl: boolean } & RawValue);

export type RawPair = readonly [Buffer, Buffer];

export type RawValue =
  | { type: 'string'; bytes: Buffer }
  | { type: 'hash'; pairs: RawPair[] }
  | { type: 'list' | 'set'; items: Buffer[] }
  /** Scores as the text Redis prints. */
  | { type: 'zset'; entries: [member: Buffer, score: string][] }
  | { type: 'stream'; entries: { id: string; fields: RawPair[] }[] }
  /** A module's type: verify can only compare its name. */
  | { type: 'other'; name: string };

const READS: Partial<Record<string, (key: Buffer) => (string | Buffer | number)[]>> = {
  string: (k) => ['GET', k],
  hash: (k) => ['HGETALL', k],
  list: (k) => ['LRANGE', k, 0, -1],
  set: (k) => ['SMEMBERS', k],
  zset: (k) => ['ZRANGE', k, 0, -1, 'WITHSCORES'],
  stream: (k) => ['XRANGE', k, '-', '+'],
};

type Call = (string | Buffer | number)[];

/**
 * Reads each key in two rounds: TYPE, then the type's read with PTTL. The rounds are not
 * atomic, which is fine for a judge that re-checks every mismatch after a pause: a key that
 * changed in between reads as `changing` or as a difference, and is looked at again.
 */
export async function readRaw(redis: RedisClient, keys: readonly Buffer[]): Promise<RawState[]> {
  if (keys.length === 0) return [];
  const types = (await send(
    redis,
    keys.map((k) => ['TYPE', k]),
  )) as (Buffer | Error)[];
  const calls: Call[] = [];
  const plan: { type: string; at: number }[] = [];
  types.forEach((t, i) => {
    if (t instanceof Error) throw new Error(`TYPE: ${t.message}`, { cause: t });
    const key = keys[i];
    if (key === undefined) throw new Error(`TYPE: ${types.length} replies for ${keys.length} keys`);
    const type = t.toString('latin1');
    plan.push({ type, at: calls.length });
    if (type === 'none') return;
    const read = READS[type];
    if (read) calls.push(read(key));
    calls.push(['PTTL', key]);
  });
  const replies = await send(redis, calls);
  return plan.map(({ type, at }): RawState => {
    if (type === 'none') return { exists: false };
    const read = READS[type];
    const reply = read ? replies[at] : undefined;
    const ttl = replies[read ? at + 1 : at];
    if (reply instanceof Error) {
      if (reply.message.includes('WRONGTYPE')) return { exists: true, changing: true };
      throw reply;
    }
    if (ttl instanceof Error) throw ttl;
    const hasTtl = typeof ttl === 'number' && ttl >= 0;
    // A key deleted between the rounds reads as an empty reply; TYPE again decides next time.
    if (read && reply === null) return { exists: true, changing: true };
    return { exists: true, hasTtl, ...rawValue(type, reply) };
  });
}

function rawValue(type: string, reply: unknown): RawValue {
  switch (type) {
    case 'string':
      return { type, bytes: reply as Buffer };
    case 'hash':
      return { type, pairs: pairs(reply as Buffer[]) };
    case 'list':
    case 'set':
      return { type, items: reply as Buffer[] };
    case 'zset':
      return { type, entries: pairs(reply as Buffer[]).map(([m, s]) => [m, s.toString('latin1')]) };
    case 'stream':
      return {
        type,
        entries: (reply as [Buffer, Buffer[]][]).map(([id, f]) => ({ id: id.toString('latin1'), fields: pairs(f) })),
      };
    default:
      return { type: 'other', name: type };
  }
}

function pairs(flat: readonly Buffer[]): RawPair[] {
  const out: RawPair[] = [];
  for (let i = 1; i < flat.length; i += 2) {
    const [name, value] = [flat[i - 1], flat[i]];
    if (name !== undefined && value !== undefined) out.push([name, value]); // both in range: i < length
  }
  return out;
}

/** Replies in call order, each a value or the error Redis answered that call with. */
async function send(redis: RedisClient, calls: readonly Call[]): Promise<unknown[]> {
  if (calls.length === 0) return [];
  // A Cluster routes single commands by slot; a pipeline there must stay within one slot.
  if (redis.isCluster) {
    return Promise.all(
      calls.map(([cmd, ...args]) =>
        redis
          .callBuffer(cmd as string, ...args)
          .catch((err: unknown) => (err instanceof Error ? err : new Error(String(err)))),
      ),
    );
  }
  const pipeline = redis.pipeline();
  for (const [cmd, ...args] of calls) pipeline.callBuffer(cmd as string, ...args);
  const results = (await pipeline.exec()) ?? [];
  return results.map(([err, value]) => err ?? value);
}
