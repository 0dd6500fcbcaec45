import { isAscii } from 'node:buffer';
import { keyArg, keyArgs, displayKey } from './bytes';
import type { RedisClient } from '../platform/redis';

export type RedisValueType = 'string' | 'hash' | 'list' | 'set' | 'zset' | 'stream';

/**
 * Bytes Redis holds: as text when the reader knows they are the UTF-8 encoding of that text (it
 * decodes a key's items in one call when they are all ASCII), as a Buffer otherwise. A Buffer
 * says nothing either way: it may well be text too (shared/core/mapping/document.ts decides).
 */
export type Bytes = string | Buffer;

/** A hash field or stream field with its value, as the exact bytes Redis holds. */
export interface FieldPair {
  name: Bytes;
  value: Bytes;
}

export interface ZsetEntry {
  member: Bytes;
  /** The score as Redis prints it (`inf`, `-inf`, `-0` and all digits kept). */
  score: string;
}

export interface StreamEntry {
  id: string;
  /** In the entry's own order, repeated names kept. */
  fields: FieldPair[];
}

interface ValueOf {
  string: Bytes;
  /** In HGETALL's order, which means nothing: the document puts the fields in order (document.ts). */
  hash: FieldPair[];
  list: Bytes[];
  /** In SMEMBERS' order, which means nothing either. */
  set: Bytes[];
  /** ZRANGE order (score, then member bytes). */
  zset: ZsetEntry[];
  stream: StreamEntry[];
}

/** Bytes as a Buffer, whichever form they came in. */
export function asBuffer(b: Bytes): Buffer {
  return typeof b === 'string' ? Buffer.from(b, 'utf8') : b;
}

export type PresentKeyState = {
  [T in RedisValueType]: { exists: true; type: T; value: ValueOf[T]; ttlMs?: number };
}[RedisValueType];

/** What a key holds at one instant; `exists: false` means its document must go. */
export type KeyState =
  { exists: false } | PresentKeyState | { exists: true; type: 'unsupported'; redisType: string; ttlMs?: number };

// Each key is read atomically: TYPE, the type's read and PTTL cannot straddle a concurrent
// change. Many keys go in one call, since a script call costs the server far more than the
// reads of a small key. The reply is one string for all the keys of a call, packed by the
// script (struct.pack, little-endian), rather than a bulk string per field: the client's RESP
// decoder costs far more per element (one Buffer each, its state machine) than slicing one
// reply by the lengths written into it, and the server writes one bulk string instead of a
// dozen a key. Per key:
//   absent:  'n'
//   present: type code (1 byte), PTTL (double: -1 without a TTL), item count m (uint32),
//            m item lengths (uint32 each), then the items' bytes one after the other.
// Type codes: s string (one item), h hash (name, value, ...), l list, S set, z zset (member,
// score as Redis prints it, ...), x stream (per entry: its id, its field count as a uint32 in
// an item of 4 bytes, then name, value, ...), u a type the script does not read (one item: its
// name). The lengths of up to MAX_PACKED items are packed in one struct.pack call (the format
// string is kept per count); a longer collection packs them one by one. The range arguments are
// strings so that Lua does not convert numbers for every call.
const MAX_PACKED = 200;
const READ_KEYS_LUA = `
local call = redis.call
local pack, concat, unpack, rep = struct.pack, table.concat, unpack, string.rep
local out, n, formats, lengths = {}, 0, {}, {}
for _, k in ipairs(KEYS) do
  local t = call('TYPE', k)['ok']
  if t == 'none' then
    n = n + 1
    out[n] = 'n'
  elseif t == 'string' then
    local s = call('GET', k)
    out[n + 1] = pack('<c1dI4I4', 's', call('PTTL', k), 1, #s)
    out[n + 2] = s
    n = n + 2
  else
    local ttl = call('PTTL', k)
    local v, c
    if t == 'hash' then v, c = call('HGETALL', k), 'h'
    elseif t == 'list' then v, c = call('LRANGE', k, '0', '-1'), 'l'
    elseif t == 'set' then v, c = call('SMEMBERS', k), 'S'
    elseif t == 'zset' then v, c = call('ZRANGE', k, '0', '-1', 'WITHSCORES'), 'z'
    elseif t == 'stream' then
      v, c = {}, 'x'
      local j = 0
      for _, e in ipairs(call('XRANGE', k, '-', '+')) do
        local f = e[2]
        v[j + 1] = e[1]
        v[j + 2] = pack('<I4', #f)
        j = j + 2
        for i = 1, #f do v[j + i] = f[i] end
        j = j + #f
      end
    else v, c = {t}, 'u'
    end
    local m = #v
    if m <= ${MAX_PACKED} then
      for i = 1, m do lengths[i] = #v[i] end
      local f = formats[m]
      if not f then
        f = '<c1dI4' .. rep('I4', m)
        formats[m] = f
      end
      out[n + 1] = pack(f, c, ttl, m, unpack(lengths, 1, m))
    else
      local parts = {pack('<c1dI4', c, ttl, m)}
      for i = 1, m do parts[i + 1] = pack('<I4', #v[i]) end
      out[n + 1] = concat(parts)
    end
    out[n + 2] = concat(v)
    n = n + 2
  end
end
return concat(out)
`;

/** Keys per script call: enough to spread its cost, few enough not to hold the server long. */
const KEYS_PER_CALL = 100;

type KeyReaderRedis = RedisClient & {
  resEsReadKeysBuffer(numKeys: number, ...keys: (string | Buffer)[]): Promise<Buffer>;
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
          return decodeKeyStates(await client.resEsReadKeysBuffer(1, keyArg(key)), 1)[0] as KeyState; // one key, one state
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
    for (const state of decodeKeyStates(reply as Buffer, count)) states.push(state);
  });
  return states;
}

const CODE_NONE = 0x6e; // n
const TYPE_OF_CODE: Readonly<Record<number, RedisValueType | 'unsupported'>> = {
  0x73: 'string', // s
  0x68: 'hash', // h
  0x6c: 'list', // l
  0x53: 'set', // S
  0x7a: 'zset', // z
  0x78: 'stream', // x
  0x75: 'unsupported', // u
};

/**
 * The states of `count` keys from one reply of the read script (the layout above). Their items
 * are slices of the reply, not copies: of its text when a key's items are all ASCII, else of its
 * bytes. A reply that does not hold exactly `count` keys' records is an error: a state read
 * wrong must never become a document.
 */
export function decodeKeyStates(reply: Buffer, count: number): KeyState[] {
  const states = new Array<KeyState>(count);
  let at = 0;
  for (let k = 0; k < count; k++) {
    if (at >= reply.length) throw malformed(`it ends after ${k} of ${count} keys`);
    const code = reply[at] as number; // at < length
    if (code === CODE_NONE) {
      states[k] = { exists: false };
      at += 1;
      continue;
    }
    const type = TYPE_OF_CODE[code];
    if (type === undefined || at + 13 > reply.length) throw malformed(`key ${k} has no valid header`);
    const ttl = reply.readDoubleLE(at + 1);
    const m = reply.readUInt32LE(at + 9);
    at += 13;
    let data = at + 4 * m;
    if (data > reply.length) throw malformed(`key ${k}'s ${m} item lengths run past its end`);
    // The shared array serves every common key; a collection larger than it gets its own, so one
    // huge key does not leave the process holding an array its size.
    const ends = m <= SHARED_ENDS.length ? SHARED_ENDS : new Float64Array(m);
    const first = data;
    for (let i = 0; i < m; i++) {
      const end = data + reply.readUInt32LE(at + 4 * i);
      if (end > reply.length) throw malformed(`key ${k}'s item ${i} runs past its end`);
      ends[i] = end;
      data = end;
    }
    const items = sliceItems(reply, first, ends, m);
    at = data;
    const state = presentState(type, items);
    if (state === undefined) throw malformed(`key ${k}'s ${m} items do not make a ${type}`);
    if (ttl >= 0) state.ttlMs = ttl;
    states[k] = state;
  }
  if (at !== reply.length) throw malformed(`${reply.length - at} bytes are left after ${count} keys`);
  return states;
}

/** Each item's end offset in the reply, for the key being decoded (decoding is synchronous, so one array serves all). */
const SHARED_ENDS = new Float64Array(4096);

/**
 * The `count` items of a key, the first starting at `from`, each ending at its `ends` offset.
 * ASCII bytes are their own UTF-8 text, and offsets into them are offsets into the text: one
 * check and one decode for all of a key's items, then a slice each, instead of a decode (a call
 * into C++) per item later. Otherwise each item is a view of the reply's bytes.
 */
function sliceItems(reply: Buffer, from: number, ends: Float64Array, count: number): Bytes[] {
  const items = new Array<Bytes>(count);
  if (count === 0) return items;
  const to = ends[count - 1] as number; // count > 0
  let start = from;
  if (isAscii(reply.subarray(from, to))) {
    const text = reply.toString('latin1', from, to);
    for (let i = 0; i < count; i++) {
      const end = ends[i] as number; // i < count
      items[i] = text.slice(start - from, end - from);
      start = end;
    }
    return items;
  }
  for (let i = 0; i < count; i++) {
    const end = ends[i] as number; // i < count
    items[i] = reply.subarray(start, end);
    start = end;
  }
  return items;
}

function malformed(why: string): Error {
  return new Error(`the read script's reply is malformed: ${why}`);
}

// Runs for every key the worker reads: the state is built in one object literal per type (no
// closure, no spread), and pairs are taken from the items by index.
function presentState(
  type: RedisValueType | 'unsupported',
  items: Bytes[],
): Exclude<KeyState, { exists: false }> | undefined {
  switch (type) {
    case 'string':
      return items.length === 1 ? { exists: true, type, value: items[0] as Bytes } : undefined; // one item
    case 'hash':
      return items.length % 2 === 0 ? { exists: true, type, value: toPairs(items, 0, items.length) } : undefined;
    case 'list':
    case 'set':
      return { exists: true, type, value: items };
    case 'zset':
      return items.length % 2 === 0 ? { exists: true, type, value: zsetEntries(items) } : undefined;
    case 'stream': {
      const entries = streamEntries(items);
      return entries && { exists: true, type, value: entries };
    }
    case 'unsupported':
      return items.length === 1
        ? { exists: true, type, redisType: latin1(items[0] as Bytes) } // one item
        : undefined;
  }
}

function latin1(b: Bytes): string {
  return typeof b === 'string' ? b : b.toString('latin1');
}

function toPairs(items: readonly Bytes[], from: number, to: number): FieldPair[] {
  const n = (to - from) >> 1;
  const out = new Array<FieldPair>(n);
  // Both in range: from + 2i + 1 < to.
  for (let i = 0; i < n; i++) out[i] = { name: items[from + 2 * i] as Bytes, value: items[from + 2 * i + 1] as Bytes };
  return out;
}

function zsetEntries(items: readonly Bytes[]): ZsetEntry[] {
  const n = items.length >> 1;
  const out = new Array<ZsetEntry>(n);
  for (let i = 0; i < n; i++) out[i] = { member: items[2 * i] as Bytes, score: latin1(items[2 * i + 1] as Bytes) }; // both in range
  return out;
}

function streamEntries(items: readonly Bytes[]): StreamEntry[] | undefined {
  const entries: StreamEntry[] = [];
  let i = 0;
  while (i < items.length) {
    const id = items[i];
    const fields = uint32Item(items[i + 1]);
    if (id === undefined || fields === undefined) return undefined;
    const end = i + 2 + fields;
    if (fields % 2 !== 0 || end > items.length) return undefined;
    entries.push({ id: latin1(id), fields: toPairs(items, i + 2, end) });
    i = end;
  }
  return entries;
}

/** A stream entry's field count: 4 bytes, little-endian (sliced as text when they happen to be ASCII). */
function uint32Item(item: Bytes | undefined): number | undefined {
  if (item?.length !== 4) return undefined;
  if (typeof item !== 'string') return item.readUInt32LE(0);
  return (
    item.charCodeAt(0) + item.charCodeAt(1) * 0x100 + item.charCodeAt(2) * 0x10000 + item.charCodeAt(3) * 0x1000000
  );
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
