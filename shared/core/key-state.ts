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
// reads of a small key. The reply is one flat array, three entries a key (type, PTTL, value or
// nil): a table per key would cost the server a table to build and to write out for every key,
// and the client an array to parse, for nothing. The range arguments are strings so that Lua
// does not convert numbers for every call.
const READ_KEYS_LUA = `
local call = redis.call
local out, n = {}, 0
for _, k in ipairs(KEYS) do
  local t = call('TYPE', k)['ok']
  local ttl, v = -2, false
  if t ~= 'none' then
    ttl = call('PTTL', k)
    if t == 'hash' then v = call('HGETALL', k)
    elseif t == 'string' then v = call('GET', k)
    elseif t == 'list' then v = call('LRANGE', k, '0', '-1')
    elseif t == 'set' then v = call('SMEMBERS', k)
    elseif t == 'zset' then v = call('ZRANGE', k, '0', '-1', 'WITHSCORES')
    elseif t == 'stream' then v = call('XRANGE', k, '-', '+')
    end
  end
  out[n + 1] = t
  out[n + 2] = ttl
  out[n + 3] = v
  n = n + 3
end
return out
`;

/** Keys per script call: enough to spread its cost, few enough not to hold the server long. */
const KEYS_PER_CALL = 100;

/**
 * One key's part of a script reply, read as bytes: every bulk string a Buffer, integers numbers
 * (the value is null for a key that is absent or of a type the script does not read).
 */
export type RawReply = [Buffer, number?, unknown?];

/** A script reply: the keys' RawReply entries one after the other, three entries a key. */
type FlatReply = unknown[];

type KeyReaderRedis = RedisClient & {
  resEsReadKeysBuffer(numKeys: number, ...keys: (string | Buffer)[]): Promise<FlatReply>;
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
          // One key: the flat reply is that key's three entries.
          return decodeReply((await client.resEsReadKeysBuffer(1, keyArg(key))) as RawReply);
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
  const states: KeyState[] = [];
  results.forEach(([err, reply], c) => {
    const count = Math.min(KEYS_PER_CALL, keys.length - c * KEYS_PER_CALL); // call c read keys from c * KEYS_PER_CALL on
    if (err) {
      const first = keys[c * KEYS_PER_CALL] ?? '';
      throw new Error(`reading ${count} keys from ${JSON.stringify(displayKey(first))}: ${err.message}`, {
        cause: err,
      });
    }
    const flat = reply as FlatReply;
    if (flat.length !== count * 3) throw new Error(`the read script answered ${flat.length} entries for ${count} keys`);
    for (let i = 0; i < flat.length; i += 3) states.push(decodeState(flat[i] as Buffer, flat[i + 1], flat[i + 2]));
  });
  return states;
}

export function decodeReply(reply: RawReply): KeyState {
  return decodeState(reply[0], reply[1], reply[2]);
}

// Runs for every key the worker reads: the state is built in one object literal per type (no
// closure, no spread), and pairs are taken from the flat reply by index.
function decodeState(typeBytes: Buffer, ttl: unknown, raw: unknown): KeyState {
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
