import type { ByteReader } from './byte-reader';
import { RdbFormatError } from './errors';
import {
  decodeIntset,
  decodeListpack,
  decodeZiplist,
  decodeZipmap,
  packedToBigInt,
  packedToNumber,
  packedToString,
  type PackedValue,
} from './packed';
import {
  readAsciiDouble,
  readBinaryDouble,
  readLength,
  readLengthBig,
  readMillisecondTime,
  readString,
  skipString,
} from './primitives';
import type { DecodedValue, RdbEncoding, StreamEntry, ZsetEntry } from './types';

export const RDB_TYPE = {
  STRING: 0,
  LIST: 1,
  SET: 2,
  ZSET: 3,
  HASH: 4,
  ZSET_2: 5,
  MODULE_PRE_GA: 6,
  MODULE_2: 7,
  HASH_ZIPMAP: 9,
  LIST_ZIPLIST: 10,
  SET_INTSET: 11,
  ZSET_ZIPLIST: 12,
  HASH_ZIPLIST: 13,
  LIST_QUICKLIST: 14,
  STREAM_LISTPACKS: 15,
  HASH_LISTPACK: 16,
  ZSET_LISTPACK: 17,
  LIST_QUICKLIST_2: 18,
  STREAM_LISTPACKS_2: 19,
  SET_LISTPACK: 20,
  STREAM_LISTPACKS_3: 21,
  HASH_METADATA_PRE_GA: 22,
  HASH_LISTPACK_EX_PRE_GA: 23,
  HASH_METADATA: 24,
  HASH_LISTPACK_EX: 25,
} as const;

const QUICKLIST_NODE_PLAIN = 1;
const QUICKLIST_NODE_PACKED = 2;
const STREAM_ITEM_DELETED = 1;
const STREAM_ITEM_SAMEFIELDS = 2;
const MODULE_OPCODE = { EOF: 0, SINT: 1, UINT: 2, FLOAT: 3, DOUBLE: 4, STRING: 5 } as const;
const MODULE_NAME_CHARSET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

export interface ValueContext {
  /** Hash fields whose own TTL (Redis 7.4) ended before this instant are left out. */
  nowMs: number;
}

export function isValueType(t: number): boolean {
  return (t >= 0 && t <= 7) || (t >= 9 && t <= 25);
}

const str = (b: Buffer): string => b.toString('utf8');

/** Code-unit order; for the decoder's text values it matches what the tests compare against. */
function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Reads the value of RDB type `t` (the byte before the key in an RDB, the first byte of a DUMP payload). */
export async function readValue(r: ByteReader, t: number, ctx: ValueContext): Promise<DecodedValue> {
  switch (t) {
    case RDB_TYPE.STRING:
      return { type: 'string', value: str(await readString(r)), rdbType: t, encoding: 'string' };
    case RDB_TYPE.LIST:
      return list(await readStrings(r, await readLength(r)), t, 'linkedlist');
    case RDB_TYPE.LIST_ZIPLIST:
      return list((await readPacked(r, decodeZiplist)).map(packedToString), t, 'ziplist');
    case RDB_TYPE.LIST_QUICKLIST:
    case RDB_TYPE.LIST_QUICKLIST_2:
      return list(await readQuicklist(r, t === RDB_TYPE.LIST_QUICKLIST_2), t, 'quicklist');
    case RDB_TYPE.SET:
      return set(await readStrings(r, await readLength(r)), t, 'hashtable');
    case RDB_TYPE.SET_INTSET:
      return set((await readPacked(r, decodeIntset)).map(packedToString), t, 'intset');
    case RDB_TYPE.SET_LISTPACK:
      return set((await readPacked(r, decodeListpack)).map(packedToString), t, 'listpack');
    case RDB_TYPE.ZSET:
    case RDB_TYPE.ZSET_2: {
      const n = await readLength(r);
      const entries: ZsetEntry[] = [];
      for (let i = 0; i < n; i++) {
        const member = str(await readString(r));
        const score = t === RDB_TYPE.ZSET_2 ? await readBinaryDouble(r) : await readAsciiDouble(r);
        entries.push({ member, score });
      }
      return zset(entries, t, 'skiplist');
    }
    case RDB_TYPE.ZSET_ZIPLIST:
      return zset(zsetPairs(await readPacked(r, decodeZiplist)), t, 'ziplist');
    case RDB_TYPE.ZSET_LISTPACK:
      return zset(zsetPairs(await readPacked(r, decodeListpack)), t, 'listpack');
    case RDB_TYPE.HASH: {
      const n = await readLength(r);
      const value: Record<string, string> = {};
      for (let i = 0; i < n; i++) {
        const field = str(await readString(r));
        value[field] = str(await readString(r));
      }
      return { type: 'hash', value, rdbType: t, encoding: 'hashtable' };
    }
    case RDB_TYPE.HASH_ZIPMAP:
      return hash(await readPacked(r, decodeZipmap), 2, t, 'zipmap', ctx);
    case RDB_TYPE.HASH_ZIPLIST:
      return hash(await readPacked(r, decodeZiplist), 2, t, 'ziplist', ctx);
    case RDB_TYPE.HASH_LISTPACK:
      return hash(await readPacked(r, decodeListpack), 2, t, 'listpack', ctx);
    case RDB_TYPE.HASH_LISTPACK_EX:
    case RDB_TYPE.HASH_LISTPACK_EX_PRE_GA:
      // The GA form starts with the hash's earliest field expiry, which we do not need.
      if (t === RDB_TYPE.HASH_LISTPACK_EX) await readMillisecondTime(r);
      return hash(await readPacked(r, decodeListpack), 3, t, 'listpackex', ctx);
    case RDB_TYPE.HASH_METADATA:
    case RDB_TYPE.HASH_METADATA_PRE_GA:
      return readHashWithFieldTtls(r, t, ctx);
    case RDB_TYPE.STREAM_LISTPACKS:
    case RDB_TYPE.STREAM_LISTPACKS_2:
    case RDB_TYPE.STREAM_LISTPACKS_3:
      return { type: 'stream', value: await readStream(r, t), rdbType: t, encoding: 'stream' };
    case RDB_TYPE.MODULE_2:
      return { ...(await skipModuleValue(r)), rdbType: t, encoding: 'module' };
    case RDB_TYPE.MODULE_PRE_GA:
      throw new RdbFormatError('module value in the pre-4.0 format, which cannot be skipped without its module');
    default:
      throw new RdbFormatError(`unknown RDB value type ${t}`);
  }
}

/** Moves past a value of RDB type `t` without decoding it (streams are decoded: their layout nests). */
export async function skipValue(r: ByteReader, t: number): Promise<void> {
  const strings = async (n: number): Promise<void> => {
    for (let i = 0; i < n; i++) await skipString(r);
  };
  switch (t) {
    case RDB_TYPE.STRING:
    case RDB_TYPE.HASH_ZIPMAP:
    case RDB_TYPE.LIST_ZIPLIST:
    case RDB_TYPE.SET_INTSET:
    case RDB_TYPE.ZSET_ZIPLIST:
    case RDB_TYPE.HASH_ZIPLIST:
    case RDB_TYPE.HASH_LISTPACK:
    case RDB_TYPE.ZSET_LISTPACK:
    case RDB_TYPE.SET_LISTPACK:
    case RDB_TYPE.HASH_LISTPACK_EX_PRE_GA:
      return skipString(r);
    case RDB_TYPE.HASH_LISTPACK_EX:
      await r.skip(8n);
      return skipString(r);
    case RDB_TYPE.LIST:
    case RDB_TYPE.SET:
    case RDB_TYPE.LIST_QUICKLIST:
      return strings(await readLength(r));
    case RDB_TYPE.HASH:
      return strings(2 * (await readLength(r)));
    case RDB_TYPE.ZSET:
    case RDB_TYPE.ZSET_2: {
      const n = await readLength(r);
      for (let i = 0; i < n; i++) {
        await skipString(r);
        if (t === RDB_TYPE.ZSET_2) await r.skip(8n);
        else await readAsciiDouble(r);
      }
      return;
    }
    case RDB_TYPE.LIST_QUICKLIST_2: {
      const n = await readLength(r);
      for (let i = 0; i < n; i++) {
        await readLength(r);
        await skipString(r);
      }
      return;
    }
    case RDB_TYPE.HASH_METADATA:
    case RDB_TYPE.HASH_METADATA_PRE_GA: {
      if (t === RDB_TYPE.HASH_METADATA) await r.skip(8n);
      const n = await readLength(r);
      for (let i = 0; i < n; i++) {
        await readLengthBig(r);
        await strings(2);
      }
      return;
    }
    default:
      await readValue(r, t, { nowMs: 0 });
  }
}

function list(value: string[], rdbType: number, encoding: RdbEncoding): DecodedValue {
  return { type: 'list', value, rdbType, encoding };
}

function set(value: string[], rdbType: number, encoding: RdbEncoding): DecodedValue {
  return { type: 'set', value: value.sort(compareStrings), rdbType, encoding };
}

/** ZRANGE order: score, then member. Skiplists are written highest first, so sort whatever the source. */
function zset(value: ZsetEntry[], rdbType: number, encoding: RdbEncoding): DecodedValue {
  value.sort((a, b) => (a.score === b.score ? compareStrings(a.member, b.member) : a.score < b.score ? -1 : 1));
  return { type: 'zset', value, rdbType, encoding };
}

function zsetPairs(items: PackedValue[]): ZsetEntry[] {
  if (items.length % 2 !== 0) throw new RdbFormatError('packed zset with an odd number of elements');
  const out: ZsetEntry[] = [];
  for (let i = 0; i < items.length; i += 2) {
    out.push({ member: packedToString(items[i] as PackedValue), score: packedToNumber(items[i + 1] as PackedValue) });
  }
  return out;
}

/** Field/value pairs, or field/value/expiry triples (an expiry of 0 means none). */
function hash(
  items: PackedValue[],
  tuple: 2 | 3,
  rdbType: number,
  encoding: RdbEncoding,
  ctx: ValueContext,
): DecodedValue {
  if (items.length % tuple !== 0) throw new RdbFormatError('packed hash with an incomplete field');
  const value: Record<string, string> = {};
  for (let i = 0; i < items.length; i += tuple) {
    if (tuple === 3) {
      const expireAt = packedToNumber(items[i + 2] as PackedValue);
      if (expireAt !== 0 && expireAt <= ctx.nowMs) continue;
    }
    value[packedToString(items[i] as PackedValue)] = packedToString(items[i + 1] as PackedValue);
  }
  return { type: 'hash', value, rdbType, encoding };
}

async function readHashWithFieldTtls(r: ByteReader, t: number, ctx: ValueContext): Promise<DecodedValue> {
  // The GA form stores field TTLs relative to the hash's earliest one (+1, so 0 still means none).
  const base = t === RDB_TYPE.HASH_METADATA ? (await readMillisecondTime(r)) - 1 : 0;
  const n = await readLength(r);
  const value: Record<string, string> = {};
  for (let i = 0; i < n; i++) {
    const ttl = Number(await readLengthBig(r));
    const field = str(await readString(r));
    const v = str(await readString(r));
    const expireAt = ttl === 0 ? 0 : ttl + base;
    if (expireAt !== 0 && expireAt <= ctx.nowMs) continue;
    value[field] = v;
  }
  return { type: 'hash', value, rdbType: t, encoding: 'hashtable' };
}

async function readStrings(r: ByteReader, n: number): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < n; i++) out.push(str(await readString(r)));
  return out;
}

async function readPacked(r: ByteReader, decode: (b: Buffer) => PackedValue[]): Promise<PackedValue[]> {
  return decode(await readString(r));
}

/**
 * Quicklist: a count of nodes, each a ziplist (v1) or, in v2, a container kind (plain: one large
 * element stored as is; packed: a listpack) and its bytes. Compressed nodes arrive as LZF
 * strings, which readString already expands.
 */
async function readQuicklist(r: ByteReader, v2: boolean): Promise<string[]> {
  const nodes = await readLength(r);
  const out: string[] = [];
  for (let i = 0; i < nodes; i++) {
    const container = v2 ? await readLength(r) : QUICKLIST_NODE_PACKED;
    const data = await readString(r);
    if (container === QUICKLIST_NODE_PLAIN) {
      out.push(str(data));
      continue;
    }
    if (container !== QUICKLIST_NODE_PACKED) throw new RdbFormatError(`unknown quicklist container ${container}`);
    for (const item of v2 ? decodeListpack(data) : decodeZiplist(data)) out.push(packedToString(item));
  }
  return out;
}

/**
 * Stream: listpacks keyed by their master entry ID, then the stream's metadata and consumer
 * groups (parsed only to move past them). Inside a listpack the first entry is the master
 * (live count, deleted count, the master field names, a 0 terminator); each following entry is
 * flags, ID delta to the master, then either values for the master fields (SAMEFIELDS) or its
 * own field count and pairs, and a trailing element count used for walking backwards.
 */
async function readStream(r: ByteReader, t: number): Promise<StreamEntry[]> {
  const entries: StreamEntry[] = [];
  const nodes = await readLength(r);
  for (let n = 0; n < nodes; n++) {
    const masterKey = await readString(r);
    if (masterKey.length !== 16) throw new RdbFormatError('stream node key is not a 128-bit ID');
    const masterMs = masterKey.readBigUInt64BE(0);
    const masterSeq = masterKey.readBigUInt64BE(8);
    const lp = decodeListpack(await readString(r));
    if (lp.length === 0) continue;
    let i = 0;
    const next = (): PackedValue => {
      if (i >= lp.length) throw new RdbFormatError('stream listpack ends inside an entry');
      return lp[i++] as PackedValue;
    };
    next(); // live entries
    next(); // deleted entries
    const masterFieldCount = packedToNumber(next());
    const masterFields: string[] = [];
    for (let f = 0; f < masterFieldCount; f++) masterFields.push(packedToString(next()));
    next(); // master entry terminator
    while (i < lp.length) {
      const flags = packedToNumber(next());
      // Deltas are stored as signed 64-bit integers and added with unsigned wrap-around.
      const ms = BigInt.asUintN(64, masterMs + packedToBigInt(next()));
      const seq = BigInt.asUintN(64, masterSeq + packedToBigInt(next()));
      const fields: Record<string, string> = {};
      if ((flags & STREAM_ITEM_SAMEFIELDS) !== 0) {
        for (const name of masterFields) fields[name] = packedToString(next());
      } else {
        const count = packedToNumber(next());
        for (let f = 0; f < count; f++) {
          const name = packedToString(next());
          fields[name] = packedToString(next());
        }
      }
      next(); // element count of this entry
      if ((flags & STREAM_ITEM_DELETED) === 0) entries.push({ id: `${ms}-${seq}`, fields });
    }
  }
  await readLength(r); // length
  await readLengthBig(r); // last id ms
  await readLengthBig(r); // last id seq
  if (t >= RDB_TYPE.STREAM_LISTPACKS_2) {
    await readLengthBig(r); // first id ms
    await readLengthBig(r); // first id seq
    await readLengthBig(r); // max deleted id ms
    await readLengthBig(r); // max deleted id seq
    await readLengthBig(r); // entries added
  }
  const groups = await readLength(r);
  for (let g = 0; g < groups; g++) {
    await readString(r); // name
    await readLengthBig(r); // last delivered id ms
    await readLengthBig(r); // last delivered id seq
    if (t >= RDB_TYPE.STREAM_LISTPACKS_2) await readLengthBig(r); // entries read
    const pending = await readLength(r);
    for (let p = 0; p < pending; p++) {
      await r.bytes(16); // entry id
      await readMillisecondTime(r); // delivery time
      await readLengthBig(r); // delivery count
    }
    const consumers = await readLength(r);
    for (let c = 0; c < consumers; c++) {
      await readString(r); // name
      await readMillisecondTime(r); // seen time
      if (t >= RDB_TYPE.STREAM_LISTPACKS_3) await readMillisecondTime(r); // active time
      const owned = await readLength(r);
      await r.bytes(16 * owned);
    }
  }
  return entries;
}

/** The 64-bit module id packs a 9-character name (6 bits each) and a 10-bit encoding version. */
export function moduleIdName(id: bigint): { moduleName: string; moduleVersion: number } {
  let name = '';
  for (let j = 0; j < 9; j++) name += MODULE_NAME_CHARSET.charAt(Number((id >> BigInt(64 - 6 * (j + 1))) & 63n));
  return { moduleName: name, moduleVersion: Number(id & 1023n) };
}

/**
 * Module values (type MODULE_2) are self-delimiting: after the module id comes a sequence of
 * typed opcodes ending with EOF, so they can be skipped without the module.
 */
export async function skipModuleValue(
  r: ByteReader,
): Promise<{ type: 'module'; moduleName: string; moduleVersion: number }> {
  const id = moduleIdName(await readLengthBig(r));
  await skipModuleOpcodes(r);
  return { type: 'module', ...id };
}

export async function skipModuleOpcodes(r: ByteReader): Promise<void> {
  for (;;) {
    const op = await readLength(r);
    switch (op) {
      case MODULE_OPCODE.EOF:
        return;
      case MODULE_OPCODE.SINT:
      case MODULE_OPCODE.UINT:
        await readLengthBig(r);
        break;
      case MODULE_OPCODE.FLOAT:
        await r.bytes(4);
        break;
      case MODULE_OPCODE.DOUBLE:
        await r.bytes(8);
        break;
      case MODULE_OPCODE.STRING:
        await readString(r);
        break;
      default:
        throw new RdbFormatError(`unknown module value opcode ${op}`);
    }
  }
}
