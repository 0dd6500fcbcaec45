import { isUtf8 } from 'node:buffer';
import { jsonDifference } from './json-compare';
import type { RawPair, RawState, RawValue } from './raw-read';

/** What verify knows of a key, read by itself (raw-read.ts). */
export type PresentRaw = Extract<RawState, { hasTtl: boolean }>;

export type DocComparison = { same: true } | { same: false; why: string } | { refused: string };

/**
 * Decodes an indexed document back to bytes, by the documented shape (docs/bytes.md) and
 * nothing of the indexing code, and compares them with what Redis holds: the key's bytes, its
 * database, type and whether it has a TTL, and the value byte for byte. Order counts where
 * Redis keeps one (lists, streams, a stream entry's fields) and not where it does not (hash
 * fields, set members, sorted-set members, which are compared by score).
 *
 * `jsonAllowed`: the rule lets a string's JSON text be indexed parsed; the parse must then say
 * exactly what the text says (json-compare.ts).
 */
export function compareDocument(
  key: Buffer,
  db: number,
  raw: PresentRaw,
  doc: Record<string, unknown>,
  jsonAllowed: boolean,
): DocComparison {
  const keyWhy = keyDifference(key, doc);
  if (keyWhy) return { same: false, why: keyWhy };
  if (doc.db !== db) return { same: false, why: `db is ${JSON.stringify(doc.db)}, the key is in ${db}` };
  const type = raw.type === 'other' ? raw.name : raw.type;
  if (doc.type !== type) return { same: false, why: `type is ${JSON.stringify(doc.type)}, Redis has a ${type}` };
  if (typeof doc.refused === 'string') return { refused: doc.refused };
  if ((doc.ttl_ms !== undefined) !== raw.hasTtl)
    return {
      same: false,
      why: raw.hasTtl ? 'Redis has a TTL, the document none' : 'the document has a TTL, Redis none',
    };
  const why = valueDifference(raw, doc.value, jsonAllowed);
  return why ? { same: false, why: `value: ${why}` } : { same: true };
}

function keyDifference(key: Buffer, doc: Record<string, unknown>): string | undefined {
  const { key: text, key_base64: b64 } = doc;
  if ((text === undefined) === (b64 === undefined)) return 'the document needs exactly one of key and key_base64';
  const got = typeof text === 'string' ? Buffer.from(text, 'utf8') : base64Bytes(b64);
  if (!got) return 'key_base64 is not base64';
  return got.equals(key) ? undefined : 'its key is not the bytes of the Redis key';
}

function valueDifference(raw: RawValue, value: unknown, jsonAllowed: boolean): string | undefined {
  switch (raw.type) {
    case 'other':
      return value === undefined ? undefined : 'a module type has no indexed value';
    case 'string':
      return stringDifference(raw.bytes, value, jsonAllowed);
    case 'list':
      return itemsDifference(raw.items, value, true);
    case 'set':
      return itemsDifference(raw.items, value, false);
    case 'hash': {
      const got = pairsOf(value);
      if (!got) return 'not an object of fields or a list of [name, value] pairs';
      return pairsDifference(raw.pairs, got, false);
    }
    case 'zset':
      return zsetDifference(raw.entries, value);
    case 'stream':
      return streamDifference(raw.entries, value);
  }
}

/** A bytes value: UTF-8 text as a JSON string, anything else as `{"$base64": "..."}`. */
function bytesOf(v: unknown): Buffer | undefined {
  if (typeof v === 'string') return Buffer.from(v, 'utf8');
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return undefined;
  const names = Object.keys(v);
  if (names.length !== 1 || names[0] !== '$base64') return undefined;
  return base64Bytes((v as Record<string, unknown>).$base64);
}

/** Strict base64: Buffer.from skips what it cannot read, so the text must re-encode to itself. */
function base64Bytes(v: unknown): Buffer | undefined {
  if (typeof v !== 'string') return undefined;
  const b = Buffer.from(v, 'base64');
  return b.toString('base64') === v ? b : undefined;
}

function stringDifference(bytes: Buffer, value: unknown, jsonAllowed: boolean): string | undefined {
  const got = bytesOf(value);
  if (got?.equals(bytes)) return undefined;
  // Parsed JSON (a JSON string literal included): only of text, only where the rule parses,
  // never the $base64 form.
  if (jsonAllowed && isUtf8(bytes) && !(typeof value === 'object' && got)) {
    const why = jsonDifference(bytes.toString('utf8'), value);
    return why ? `as JSON, ${why}` : undefined;
  }
  return got ? 'not the bytes Redis holds' : 'not a string or the $base64 form';
}

function itemsDifference(items: readonly Buffer[], value: unknown, ordered: boolean): string | undefined {
  if (!Array.isArray(value)) return 'not an array';
  const got: Buffer[] = [];
  for (const [i, v] of value.entries()) {
    const b = bytesOf(v);
    if (!b) return `item ${i} is not a string or the $base64 form`;
    got.push(b);
  }
  if (got.length !== items.length) return `${got.length} items, Redis has ${items.length}`;
  const want = ordered ? items : [...items].sort((a, b) => Buffer.compare(a, b));
  if (!ordered) got.sort((a, b) => Buffer.compare(a, b));
  // Same lengths (checked above): a missing element cannot happen and would count as a difference.
  const i = want.findIndex((b, j) => {
    const other = got[j];
    return other === undefined || !b.equals(other);
  });
  return i < 0 ? undefined : ordered ? `item ${i} differs` : 'the members differ';
}

/** Fields as an object (names that are text) or as `[[name, value], ...]`. */
function pairsOf(value: unknown): RawPair[] | undefined {
  if (Array.isArray(value)) {
    const out: RawPair[] = [];
    for (const p of value) {
      if (!Array.isArray(p) || p.length !== 2) return undefined;
      const [name, v] = [bytesOf(p[0]), bytesOf(p[1])];
      if (!name || !v) return undefined;
      out.push([name, v]);
    }
    return out;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const out: RawPair[] = [];
  for (const [name, v] of Object.entries(value)) {
    const b = bytesOf(v);
    if (!b) return undefined;
    out.push([Buffer.from(name, 'utf8'), b]);
  }
  return out;
}

function pairsDifference(want: readonly RawPair[], got: RawPair[], ordered: boolean): string | undefined {
  if (got.length !== want.length) return `${got.length} fields, Redis has ${want.length}`;
  const byName = (a: RawPair, b: RawPair): number => Buffer.compare(a[0], b[0]) || Buffer.compare(a[1], b[1]);
  const w = ordered ? want : [...want].sort(byName);
  const g = ordered ? got : [...got].sort(byName);
  // Same lengths (checked above): a missing pair cannot happen and would count as a difference.
  const i = w.findIndex(([name, v], j) => {
    const other = g[j];
    return other === undefined || !name.equals(other[0]) || !v.equals(other[1]);
  });
  return i < 0 ? undefined : ordered ? `field ${i} differs` : 'the fields differ';
}

function zsetDifference(entries: readonly [Buffer, string][], value: unknown): string | undefined {
  if (!Array.isArray(value)) return 'not an array';
  if (value.length !== entries.length) return `${value.length} members, Redis has ${entries.length}`;
  const scores = new Map(entries.map(([m, s]) => [m.toString('latin1'), redisScore(s)]));
  for (const [i, e] of (value as unknown[]).entries()) {
    const { member, score } = (e ?? {}) as { member?: unknown; score?: unknown };
    const m = bytesOf(member);
    if (!m) return `entry ${i}: member is not a string or the $base64 form`;
    const want = scores.get(m.toString('latin1'));
    if (want === undefined) return `entry ${i}: Redis has no such member`;
    const got = score === 'inf' ? Infinity : score === '-inf' ? -Infinity : score === '-0' ? -0 : score;
    if (!Object.is(got, want)) return `entry ${i}: score ${JSON.stringify(score)}, Redis has ${want}`;
    scores.delete(m.toString('latin1'));
  }
  return undefined;
}

/** A score as Redis prints it: digits, or `inf` / `-inf` (which Number() does not read). */
function redisScore(text: string): number {
  if (text === 'inf' || text === '+inf') return Infinity;
  if (text === '-inf') return -Infinity;
  return Number(text);
}

function streamDifference(entries: readonly { id: string; fields: RawPair[] }[], value: unknown): string | undefined {
  if (!Array.isArray(value)) return 'not an array';
  if (value.length !== entries.length) return `${value.length} entries, Redis has ${entries.length}`;
  for (const [i, e] of (value as unknown[]).entries()) {
    const { id, fields } = (e ?? {}) as { id?: unknown; fields?: unknown };
    const want = entries[i];
    if (want === undefined) return `entry ${i}: Redis has none`; // not reached: lengths are equal
    if (id !== want.id) return `entry ${i}: id ${JSON.stringify(id)}, Redis has ${want.id}`;
    const got = pairsOf(fields);
    if (!got) return `entry ${i}: fields are not an object or a list of pairs`;
    const why = pairsDifference(want.fields, got, true);
    if (why) return `entry ${i}: ${why}`;
  }
  return undefined;
}
