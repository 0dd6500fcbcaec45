import { keyFromBytes } from '../../../shared/core/bytes';

/**
 * The outbox entry format and the shapes of the stream replies that carry it.
 *
 * An application announces a change with `XADD <stream> * key <key> [key <key2> …] [db <n>]`
 * in the same MULTI/EXEC or Lua script as the change itself. Only key names travel: the
 * worker reads each key's current state, so the value is never needed. Other fields are
 * ignored, so an application may add its own (an operation name, a request id).
 */

/**
 * An entry as a stream reply gives it; `fields` is null when the entry was deleted after
 * delivery. Field names and values are escaped strings (shared/core/bytes.ts), so a key that is not
 * UTF-8 keeps its bytes.
 */
export interface RawEntry {
  id: string;
  fields: string[] | null;
}

export type OutboxEntry =
  | { kind: 'change'; id: string; db: number; keys: string[] }
  | { kind: 'malformed'; id: string; reason: string }
  /** Delivered once, then deleted from the stream (XDEL, or trimmed by someone else): its keys are unknown. */
  | { kind: 'deleted'; id: string };

export interface EntryRules {
  /** The database of an entry without a `db` field: the one holding the stream. */
  defaultDb: number;
  /** `redis.databases`: an entry naming another database is malformed. */
  databases: ReadonlySet<number>;
}

export function parseEntry(entry: RawEntry, rules: EntryRules): OutboxEntry {
  const { id, fields } = entry;
  if (fields === null) return { kind: 'deleted', id };
  const keys: string[] = [];
  const dbs: string[] = [];
  for (let i = 0; i + 1 < fields.length; i += 2) {
    const [name, value] = [fields[i], fields[i + 1]];
    if (value === undefined) break; // unreachable: the loop bound keeps i + 1 in range
    if (name === 'key') keys.push(value);
    else if (name === 'db') dbs.push(value);
  }
  // The empty string is a key like any other (`SET "" v` is valid), so every `key` field counts.
  if (keys.length === 0) return { kind: 'malformed', id, reason: 'no `key` field' };
  if (dbs.length > 1) return { kind: 'malformed', id, reason: 'more than one `db` field' };
  let db = rules.defaultDb;
  const [dbField] = dbs;
  if (dbField !== undefined) {
    if (!/^\d+$/.test(dbField))
      return {
        kind: 'malformed',
        id,
        reason: `\`db\` is not a database number: ${JSON.stringify(dbField.slice(0, 40))}`,
      };
    db = Number(dbField);
    if (!rules.databases.has(db)) return { kind: 'malformed', id, reason: `db ${db} is not in redis.databases` };
  }
  return { kind: 'change', id, db, keys };
}

class ReplyShapeError extends Error {
  override readonly name = 'ReplyShapeError';
}

function asArray(v: unknown, what: string): unknown[] {
  if (!Array.isArray(v)) throw new ReplyShapeError(`unexpected ${what} reply: ${shown(v)}`);
  return v;
}

function asString(v: unknown, what: string): string {
  if (typeof v !== 'string') throw new ReplyShapeError(`unexpected ${what} reply: ${shown(v)}`);
  return v;
}

/** A bulk string of a reply read as Buffers (ids, field names and values), or as text. */
function asBytes(v: unknown, what: string): string {
  return Buffer.isBuffer(v) ? keyFromBytes(v) : asString(v, what);
}

function decodeEntryList(list: unknown, what: string): RawEntry[] {
  return asArray(list, what).map((item) => {
    const [id, fields] = asArray(item, what);
    return {
      id: asBytes(id, what),
      fields: fields === null ? null : asArray(fields, what).map((f) => asBytes(f, what)),
    };
  });
}

/** XREADGROUP on one stream: `[[stream, entries]]`, or null when BLOCK timed out. */
export function decodeReadGroup(reply: unknown): RawEntry[] {
  if (reply === null) return [];
  const streams = asArray(reply, 'XREADGROUP');
  if (streams.length === 0) return [];
  const [, entries] = asArray(streams[0], 'XREADGROUP');
  return decodeEntryList(entries, 'XREADGROUP');
}

export interface AutoClaimReply {
  next: string;
  entries: RawEntry[];
  /** Ids that were pending but no longer in the stream (Redis 7+; XAUTOCLAIM drops them from the PEL). */
  deleted: string[];
}

export function decodeAutoClaim(reply: unknown): AutoClaimReply {
  const [next, entries, deleted] = asArray(reply, 'XAUTOCLAIM');
  return {
    next: asBytes(next, 'XAUTOCLAIM'),
    // Redis 6.2 lists a deleted entry as [id, null]; 7.0 moves it to the third element.
    entries: decodeEntryList(entries, 'XAUTOCLAIM'),
    deleted: deleted === undefined ? [] : asArray(deleted, 'XAUTOCLAIM').map((d) => asBytes(d, 'XAUTOCLAIM')),
  };
}

export interface GroupInfo {
  name: string;
  pending: number;
  lastDeliveredId: string;
}

/** XINFO GROUPS: a flat field/value list per group. */
export function decodeGroups(reply: unknown): GroupInfo[] {
  return asArray(reply, 'XINFO GROUPS').map((g) => {
    const flat = asArray(g, 'XINFO GROUPS');
    const field = new Map<string, unknown>();
    for (let i = 0; i + 1 < flat.length; i += 2) field.set(asString(flat[i], 'XINFO GROUPS'), flat[i + 1]);
    return {
      name: asString(field.get('name'), 'XINFO GROUPS'),
      pending: Number(field.get('pending')),
      lastDeliveredId: asString(field.get('last-delivered-id'), 'XINFO GROUPS'),
    };
  });
}

export interface ConsumerInfo {
  name: string;
  pending: number;
}

/** XINFO CONSUMERS: a flat field/value list per consumer. */
export function decodeConsumers(reply: unknown): ConsumerInfo[] {
  return asArray(reply, 'XINFO CONSUMERS').map((c) => {
    const flat = asArray(c, 'XINFO CONSUMERS');
    const field = new Map<string, unknown>();
    for (let i = 0; i + 1 < flat.length; i += 2) field.set(asString(flat[i], 'XINFO CONSUMERS'), flat[i + 1]);
    return { name: asString(field.get('name'), 'XINFO CONSUMERS'), pending: Number(field.get('pending')) };
  });
}

/** The ids of the XPENDING extended form (`[[id, consumer, idle, deliveries], …]`). */
export function decodePendingIds(reply: unknown): string[] {
  return asArray(reply, 'XPENDING').map((row) => asString(asArray(row, 'XPENDING')[0], 'XPENDING'));
}

/**
 * XCLAIM: the claimed entries. An entry deleted from the stream is left out (Redis 7 also drops
 * it from the pending list; 6.2 lists it as null, or as [id, null]).
 */
export function decodeClaim(reply: unknown): RawEntry[] {
  return decodeEntryList(
    asArray(reply, 'XCLAIM').filter((item) => item !== null),
    'XCLAIM',
  ).filter((e) => e.fields !== null);
}

/** The smallest id in a group's pending list, from the XPENDING summary form. */
export function decodeOldestPending(reply: unknown): string | undefined {
  const [count, smallest] = asArray(reply, 'XPENDING');
  return Number(count) > 0 && typeof smallest === 'string' ? smallest : undefined;
}

/** Stream ids are `<ms>-<seq>`, both unsigned 64-bit: compared as numbers, not strings. */
function parseId(id: string): [bigint, bigint] {
  const [, ms, seq] = /^(\d+)-(\d+)$/.exec(id) ?? [];
  if (ms === undefined || seq === undefined) throw new ReplyShapeError(`not a stream id: ${id}`);
  return [BigInt(ms), BigInt(seq)];
}

export function compareIds(a: string, b: string): number {
  const [am, as] = parseId(a);
  const [bm, bs] = parseId(b);
  if (am !== bm) return am < bm ? -1 : 1;
  return as === bs ? 0 : as < bs ? -1 : 1;
}

export function minId(a: string, b: string): string {
  return compareIds(a, b) <= 0 ? a : b;
}

const MAX_SEQ = 2n ** 64n - 1n;

/** The smallest id greater than `id`. */
export function nextId(id: string): string {
  const [ms, seq] = parseId(id);
  return seq === MAX_SEQ ? `${ms + 1n}-0` : `${ms}-${seq + 1n}`;
}

/** A reply for an error message, cut short. JSON.stringify answers undefined for undefined (typed string). */
function shown(v: unknown): string {
  return (JSON.stringify(v) as string | undefined)?.slice(0, 200) ?? String(v);
}
