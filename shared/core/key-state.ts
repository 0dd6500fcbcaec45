import { keyArg, keyArgs, displayKey } from './bytes';
import type { RedisClient } from '../platform/redis';

export type RedisValueType = 'string' | 'hash' | 'list' | 'set' | 'zset' | 'stream';

/** A hash field or stream field with its value, as the exact bytes Redis holds. */
export interface FieldPair {
  name: Buffer;
  value: Buffer;
}

export interface ZsetEntry {
  member: Buffer;
  /** The score as Redis prints it (`inf`, `-inf`, `-0` and all digits kept). */
  score: string;
}

export interface StreamEntry {
  id: string;
  /** In the entry's own order, repeated names kept. */
  fields: FieldPair[];
}

interface ValueOf {
  string: Buffer;
  /** In HGETALL's order, which means nothing: the document puts the fields in order (document.ts). */
  hash: FieldPair[];
  list: Buffer[];
  /** In SMEMBERS' order, which means nothing either. */
  set: Buffer[];
  /** ZRANGE order (score, then member bytes). */
  zset: ZsetEntry[];
  stream: StreamEntry[];
}

export type PresentKeyState = {
  [T in RedisValueType]: { exists: true; type: T; value: ValueOf[T]; ttlMs?: number };
}[RedisValueType];

/** What a key holds at one instant; `exists: false` means its document must go. */
export type KeyState =
  { exists: false } | PresentKeyState | { exists: true; type: 'unsupported'; redisType: string; ttlMs?: number };

// Each key is read atomically: TYPE, the type's read and PTTL cannot straddle a concurrent
// change. Many keys go in one call, since a script call costs the server far more than the
// reads of a small key.
const READ_KEYS_LUA = `
local function read(k)
  local t = redis.call('TYPE', k)['ok']
  if t == 'none' then return {t} end
  local ttl = redis.call('PTTL', k)
  local v
  if t == 'string' then v = redis.call('GET', k)
  elseif t == 'hash' then v = redis.call('HGETALL', k)
  elseif t == 'list' then v = redis.call('LRANGE', k, 0, -1)
  elseif t == 'set' then v = redis.call('SMEMBERS', k)
  elseif t == 'zset' then v = redis.call('ZRANGE', k, 0, -1, 'WITHSCORES')
  elseif t == 'stream' then v = redis.call('XRANGE', k, '-', '+')
  else return {t, ttl} end
  return {t, ttl, v}
end
local out = {}
for i, k in ipairs(KEYS) do out[i] = read(k) end
return out
`;

/** Keys per script call: enough to spread its cost, few enough not to hold the server long. */
const KEYS_PER_CALL = 100;

/** A script reply read as bytes: every bulk string a Buffer, integers numbers. */
export type RawReply = [Buffer, number?, unknown?];

type KeyReaderRedis = RedisClient & {
  resEsReadKeysBuffer(numKeys: number, ...keys: (string | Buffer)[]): Promise<RawReply[]>;
};

function withReadCommand(redis: RedisClient): KeyReaderRedis {
  const r = redis as KeyReaderRedis;
  // ioredis adds a `…Buffer` variant of every defined command: replies as bytes, never decoded.
  if (typeof r.resEsReadKeysBuffer !== 'function') {
    redis.defineCommand('resEsReadKeys', { lua: READ_KEYS_LUA, readOnly: true });
  }
  return r;
}

/**
 * Reads many keys in one pipelined round trip, as bytes. Keys are escaped (shared/core/bytes.ts).
 * The client must already be on the right database. A key whose read fails (e.g. a transient
 * error) rejects the whole call. On a Cluster each key is its own command, sent without
 * waiting for the others: a cluster pipeline must stay within one slot, while single commands
 * are routed by slot and follow MOVED and ASK redirections (a key being migrated is read where it is).
 */
export async function readKeyStates(redis: RedisClient, keys: readonly string[]): Promise<KeyState[]> {
  if (keys.length === 0) return [];
  const client = withReadCommand(redis);
  if (client.isCluster) {
    return Promise.all(
      keys.map(async (key) => {
        try {
          const [reply] = await client.resEsReadKeysBuffer(1, keyArg(key));
          return decodeReply(reply as RawReply);
        } catch (err) {
          throw new Error(`reading ${JSON.stringify(displayKey(key))}: ${(err as Error).message}`, { cause: err });
        }
      }),
    );
  }
  const args = keyArgs(keys);
  const pipeline = client.pipeline();
  for (let i = 0; i < args.length; i += KEYS_PER_CALL) {
    const chunk = args.slice(i, i + KEYS_PER_CALL);
    // Queued on the pipeline, not sent: its reply (or error) comes back through exec() below.
    void (pipeline as unknown as KeyReaderRedis).resEsReadKeysBuffer(chunk.length, ...chunk);
  }
  const results = (await pipeline.exec()) ?? [];
  return results.flatMap(([err, replies], c) => {
    if (err) {
      const first = keys[c * KEYS_PER_CALL] ?? ''; // call c read keys from c * KEYS_PER_CALL on
      throw new Error(
        `reading ${Math.min(KEYS_PER_CALL, keys.length - c * KEYS_PER_CALL)} keys from ${JSON.stringify(displayKey(first))}: ${err.message}`,
        { cause: err },
      );
    }
    return (replies as RawReply[]).map(decodeReply);
  });
}

// Runs for every key the worker reads: the state is built in one object literal per type (no
// closure, no spread), and pairs are taken from the flat reply by index.
export function decodeReply(reply: RawReply): KeyState {
  const typeBytes = reply[0];
  const ttl = reply[1];
  const raw = reply[2];
  const type = typeBytes.toString('latin1');
  if (type === 'none') return { exists: false };
  const ttlMs = typeof ttl === 'number' && ttl >= 0 ? ttl : undefined;
  let state: Exclude<KeyState, { exists: false }>;
  switch (type) {
    case 'string':
      state = { exists: true, type, value: raw as Buffer };
      break;
    case 'hash':
      state = { exists: true, type, value: toPairs(raw as Buffer[]) };
      break;
    case 'list':
    case 'set':
      state = { exists: true, type, value: raw as Buffer[] };
      break;
    case 'zset':
      state = { exists: true, type, value: zsetEntries(raw as Buffer[]) };
      break;
    case 'stream':
      state = {
        exists: true,
        type,
        value: (raw as [Buffer, Buffer[]][]).map(([id, fields]) => ({
          id: id.toString('latin1'),
          fields: toPairs(fields),
        })),
      };
      break;
    default:
      state = { exists: true, type: 'unsupported', redisType: type };
  }
  if (ttlMs !== undefined) state.ttlMs = ttlMs;
  return state;
}

function toPairs(flat: readonly Buffer[]): FieldPair[] {
  const n = flat.length >> 1;
  const out = new Array<FieldPair>(n);
  // Both in range: 2i + 1 < length.
  for (let i = 0; i < n; i++) out[i] = { name: flat[2 * i] as Buffer, value: flat[2 * i + 1] as Buffer };
  return out;
}

function zsetEntries(flat: readonly Buffer[]): ZsetEntry[] {
  const n = flat.length >> 1;
  const out = new Array<ZsetEntry>(n);
  for (let i = 0; i < n; i++)
    out[i] = { member: flat[2 * i] as Buffer, score: (flat[2 * i + 1] as Buffer).toString('latin1') }; // both in range
  return out;
}

/**
 * One EXISTS per escaped key (shared/core/bytes.ts); a Cluster routes each by the slot of its bytes
 * (a cluster pipeline must stay within one).
 */
export async function existsMany(redis: RedisClient, keys: readonly string[]): Promise<boolean[]> {
  if (keys.length === 0) return [];
  if (redis.isCluster) return Promise.all(keys.map(async (k) => (await redis.exists(keyArg(k))) === 1));
  const pipeline = redis.pipeline();
  for (const key of keys) pipeline.exists(keyArg(key));
  const replies = (await pipeline.exec()) ?? [];
  return keys.map((k, i) => {
    const [err, n] = replies[i] ?? [new Error('no reply'), 0];
    if (err) throw new Error(`EXISTS ${JSON.stringify(displayKey(k))}: ${err.message}`);
    return n === 1;
  });
}
