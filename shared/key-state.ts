import type { RedisClient } from './redis';

export type RedisValueType = 'string' | 'hash' | 'list' | 'set' | 'zset' | 'stream';

export interface ZsetEntry {
  member: string;
  score: number;
}

export interface StreamEntry {
  id: string;
  fields: Record<string, string>;
}

interface ValueOf {
  string: string;
  hash: Record<string, string>;
  list: string[];
  set: string[];
  zset: ZsetEntry[];
  stream: StreamEntry[];
}

export type PresentKeyState = {
  [T in RedisValueType]: { exists: true; type: T; value: ValueOf[T]; ttlMs?: number };
}[RedisValueType];

/** What a key holds at one instant; `exists: false` means its document must go. */
export type KeyState =
  | { exists: false }
  | PresentKeyState
  | { exists: true; type: 'unsupported'; redisType: string; ttlMs?: number };

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

type RawReply = [string, number?, unknown?];

type KeyReaderRedis = RedisClient & {
  resEsReadKeys(numKeys: number, ...keys: string[]): Promise<RawReply[]>;
};

function withReadCommand(redis: RedisClient): KeyReaderRedis {
  const r = redis as KeyReaderRedis;
  if (typeof r.resEsReadKeys !== 'function') {
    redis.defineCommand('resEsReadKeys', { lua: READ_KEYS_LUA, readOnly: true });
  }
  return r;
}

/**
 * Reads many keys in one pipelined round trip. The client must already be on the right
 * database. A key whose read fails (e.g. a transient error) rejects the whole call.
 * On a Cluster each key is its own command, sent without waiting for the others: a cluster
 * pipeline must stay within one slot, while single commands are routed by slot and follow
 * MOVED and ASK redirections (a key being migrated is read where it is).
 */
export async function readKeyStates(redis: RedisClient, keys: readonly string[]): Promise<KeyState[]> {
  if (keys.length === 0) return [];
  const client = withReadCommand(redis);
  if (client.isCluster) {
    return Promise.all(
      keys.map(async (key) => {
        try {
          const [reply] = await client.resEsReadKeys(1, key);
          return decodeReply(reply);
        } catch (err) {
          throw new Error(`reading ${JSON.stringify(key)}: ${(err as Error).message}`);
        }
      }),
    );
  }
  const pipeline = client.pipeline();
  for (let i = 0; i < keys.length; i += KEYS_PER_CALL) {
    const chunk = keys.slice(i, i + KEYS_PER_CALL);
    (pipeline as unknown as KeyReaderRedis).resEsReadKeys(chunk.length, ...chunk);
  }
  const results = (await pipeline.exec()) ?? [];
  return results.flatMap(([err, replies], c) => {
    if (err) {
      const chunk = keys.slice(c * KEYS_PER_CALL, (c + 1) * KEYS_PER_CALL);
      throw new Error(`reading ${chunk.length} keys from ${JSON.stringify(chunk[0])}: ${err.message}`);
    }
    return (replies as RawReply[]).map(decodeReply);
  });
}

export function decodeReply(reply: RawReply): KeyState {
  const [type, ttl, raw] = reply;
  if (type === 'none') return { exists: false };
  const ttlMs = typeof ttl === 'number' && ttl >= 0 ? ttl : undefined;
  const withTtl = <S extends object>(s: S): S & { ttlMs?: number } => (ttlMs === undefined ? s : { ...s, ttlMs });
  switch (type) {
    case 'string':
      return withTtl({ exists: true, type, value: String(raw) });
    case 'hash':
      return withTtl({ exists: true, type, value: pairsToObject(raw as string[]) });
    case 'list':
      return withTtl({ exists: true, type, value: (raw as string[]).map(String) });
    case 'set':
      return withTtl({ exists: true, type, value: (raw as string[]).map(String).sort(compareStrings) });
    case 'zset':
      return withTtl({ exists: true, type, value: zsetEntries(raw as string[]) });
    case 'stream':
      return withTtl({
        exists: true,
        type,
        value: (raw as [string, string[]][]).map(([id, fields]) => ({ id, fields: pairsToObject(fields) })),
      });
    default:
      return withTtl({ exists: true, type: 'unsupported', redisType: String(type) });
  }
}

function pairsToObject(flat: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) out[String(flat[i])] = String(flat[i + 1]);
  return out;
}

function zsetEntries(flat: readonly string[]): ZsetEntry[] {
  const out: ZsetEntry[] = [];
  for (let i = 0; i + 1 < flat.length; i += 2) out.push({ member: String(flat[i]), score: parseScore(String(flat[i + 1])) });
  return out;
}

/** Elasticsearch has no infinities; clamp them to the largest finite double. */
function parseScore(s: string): number {
  const n = Number(s);
  if (n === Infinity || s === 'inf' || s === '+inf') return Number.MAX_VALUE;
  if (n === -Infinity || s === '-inf') return -Number.MAX_VALUE;
  return n;
}

/** Byte order, as Redis sorts, so set arrays are stable whatever the locale. */
export function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
