import { isUtf8 } from 'node:buffer';
import { createHash } from 'node:crypto';
import { isBinaryKey, keyToBytes } from '../bytes';
import { DocumentRejectedError } from '../../platform/errors';
import { asBuffer, type Bytes, type FieldPair, type KeyState } from '../key-state';
import type { Coercion } from '../../platform/config/schema';
import { BASE64_MARKER, isBase64Marker, parseJsonExactly, type JsonValue } from './json-text';

export type { JsonValue };

/**
 * The document a key becomes (docs/bytes.md). The key is always kept, so verify and reconcile
 * can find it again: as `key` when its name is UTF-8 text, as `key_base64` otherwise.
 * `refused` marks a stub that stands in for a value that could not be indexed.
 */
export interface SyncDocument {
  key?: string;
  key_base64?: string;
  db: number;
  type: string;
  value?: JsonValue;
  ttl_ms?: number;
  refused?: string;
  [field: string]: JsonValue | undefined;
}

export interface TransformContext {
  /** Escaped (shared/core/bytes.ts): a name that is not UTF-8 keeps its bytes as U+DC80-U+DCFF. */
  key: string;
  db: number;
  type: string;
}

/** A rule's transform module: return the document to index, or null for "no document". */
export type TransformFn = (doc: SyncDocument, context: TransformContext) => SyncDocument | null | undefined;

/** How one rule shapes documents (the routing half lives in the router). */
export interface DocumentShape {
  json: boolean | 'auto';
  keep?: readonly string[];
  rename?: Readonly<Record<string, string>>;
  coerce?: Readonly<Record<string, Coercion>>;
  transform?: TransformFn;
  /** Add `content`: the value's strings as one text field, so a mixed-type index is searchable. */
  searchText?: boolean;
}

/** Bound on `content`, so one huge collection cannot make a huge document. */
export const MAX_CONTENT_CHARS = 100_000;

/** Bound on a stub's reason: it explains, it does not carry data. */
const MAX_REASON_CHARS = 1000;

export type DocOperation =
  { op: 'index'; index: string; id: string; doc: SyncDocument } | { op: 'delete'; index: string; id: string };

/** Elasticsearch rejects `_id`s over 512 bytes and the empty `_id`. */
export const MAX_ID_BYTES = 512;

/**
 * The `_id` for an id built from a key. An id that is not UTF-8 text, is empty or is over 512
 * bytes becomes `sha256:` and the hex SHA-256 of its bytes: stable, and the key stays in the
 * document.
 */
export function documentId(id: string): string {
  if (id !== '' && !isBinaryKey(id) && Buffer.byteLength(id, 'utf8') <= MAX_ID_BYTES) return id;
  return `sha256:${createHash('sha256').update(keyToBytes(id)).digest('hex')}`;
}

/** How a document names its key: the text, or the bytes in base64 when they are not UTF-8. */
function keyFields(key: string): { key: string } | { key_base64: string } {
  return isBinaryKey(key) ? { key_base64: keyToBytes(key).toString('base64') } : { key };
}

/**
 * The text of bytes that are valid UTF-8, else undefined; text the reader already decoded is
 * that text. Decoding first and validating only when the text holds U+FFFD (what the decoder
 * puts in place of a bad sequence) costs one native call per value instead of two: this runs
 * for every field and item of every document the reader could not decode in one go.
 * `toString()` without arguments is Buffer's shortest path to the UTF-8 decoder (an encoding
 * argument is normalised and looked up on every call).
 */
function utf8Text(b: Bytes): string | undefined {
  if (typeof b === 'string') return b;
  const text = b.toString();
  return text.includes('\uFFFD') && !isUtf8(b) ? undefined : text;
}

/** Bytes as a JSON value: the text when they are UTF-8, `{"$base64": "..."}` otherwise. */
function bytesValue(b: Bytes): JsonValue {
  return utf8Text(b) ?? { [BASE64_MARKER]: asBuffer(b).toString('base64') };
}

/** Orders bytes as Redis compares them (memcmp), whichever form they came in. */
function compareBytes(a: Bytes, b: Bytes): number {
  return Buffer.compare(asBuffer(a), asBuffer(b));
}

/**
 * Turns a key's current state into the Elasticsearch operation that makes the index match it.
 * Throws DocumentRejectedError when the value cannot become a document under the rule.
 */
export function toOperation(
  target: { index: string; id: string },
  shape: DocumentShape,
  db: number,
  key: string,
  state: KeyState,
): DocOperation {
  const doc = state.exists ? buildDocument(shape, db, key, state) : null;
  return doc
    ? { op: 'index', index: target.index, id: target.id, doc }
    : { op: 'delete', index: target.index, id: target.id };
}

/**
 * What stands in for a key whose value cannot be indexed: its key, database, type and why, and
 * no value, so the old document does not keep answering with a value Redis no longer holds.
 */
export function refusedDocument(db: number, key: string, type: string, reason: string): SyncDocument {
  return { ...keyFields(key), db, type, refused: reason.slice(0, MAX_REASON_CHARS) };
}

export function buildDocument(
  shape: DocumentShape,
  db: number,
  key: string,
  state: Exclude<KeyState, { exists: false }>,
): SyncDocument | null {
  let doc: SyncDocument;
  if (state.type === 'unsupported') {
    doc = { ...keyFields(key), db, type: state.redisType };
  } else {
    let value: JsonValue;
    switch (state.type) {
      case 'string':
        value = stringValue(state.value, shape.json);
        break;
      case 'hash':
        value = hashValue(state.value);
        break;
      case 'list':
        value = state.value.map(bytesValue);
        break;
      case 'set':
        value = setValue(state.value);
        break;
      case 'zset':
        value = state.value.map((e) => ({ member: bytesValue(e.member), score: scoreValue(e.score) }));
        break;
      case 'stream':
        value = state.value.map((e) => ({ id: e.id, fields: pairsValue(e.fields, true) }));
        break;
    }
    value = shapeFields(value, shape);
    // Literals rather than a spread of keyFields(): the hot path, and one hidden class per form.
    doc = isBinaryKey(key)
      ? { key_base64: keyToBytes(key).toString('base64'), db, type: state.type, value }
      : { key, db, type: state.type, value };
    if (shape.searchText) doc.content = searchText(value);
  }
  if (state.ttlMs !== undefined) doc.ttl_ms = state.ttlMs;
  if (!shape.transform) return doc;
  let out: SyncDocument | null | undefined;
  try {
    out = shape.transform(doc, { key, db, type: doc.type });
  } catch (err) {
    throw new DocumentRejectedError(`transform failed: ${err instanceof Error ? err.message : String(err)}`, {
      cause: err,
    });
  }
  if (out === null || out === undefined) return null;
  const { key: _key, key_base64: _keyBase64, ...rest } = out;
  return { ...keyFields(key), ...rest, db };
}

/**
 * Field/value pairs as an object when every name is UTF-8 text, appears once and the object
 * keeps the pairs' order (a JS object puts integer-like names first; `keepOrder` is for stream
 * entries, whose order is data); otherwise as `[[name, value], ...]`, which keeps everything.
 * A field named `__proto__` is a field like any other (setField).
 */
/**
 * A hash's fields in name order, so one state always gives one document: Redis keeps no order,
 * and HGETALL's changes without a write (a no-op HDEL performs a rehash step). Names and values
 * sit in two arrays sorted together by insertion (a hash read in one call is small), rather
 * than in an object per field handed to Array.prototype.sort: this runs for every field of
 * every hash.
 */
function hashValue(pairs: readonly FieldPair[]): JsonValue {
  const n = pairs.length;
  const names: string[] = [];
  const values: Bytes[] = [];
  for (let i = 0; i < n; i++) {
    const p = pairs[i] as FieldPair; // i < n
    const name = utf8Text(p.name);
    if (name === undefined)
      return pairsValue(
        [...pairs].sort((a, b) => compareBytes(a.name, b.name)),
        false,
      );
    let j = i;
    while (j > 0 && compareCodePoints(names[j - 1] as string, name) > 0) {
      names[j] = names[j - 1] as string;
      values[j] = values[j - 1] as Bytes;
      j--;
    }
    names[j] = name;
    values[j] = p.value;
  }
  // Field names are unique in a hash: no repeat to look for.
  const obj: Record<string, JsonValue> = {};
  for (let i = 0; i < n; i++) setField(obj, names[i] as string, bytesValue(values[i] as Bytes));
  return obj;
}

/** A set's members in byte order, for the same reason. */
function setValue(members: readonly Bytes[]): JsonValue {
  const values = members.map(bytesValue);
  if (values.every((v): v is string => typeof v === 'string')) return values.sort(compareCodePoints);
  return [...members].sort(compareBytes).map(bytesValue);
}

/**
 * Orders text as its UTF-8 bytes would order: by code point. JS's `<` compares UTF-16 units,
 * which puts U+E000-U+FFFF after the characters beyond U+FFFF (surrogate pairs); those two
 * ranges are swapped here. Names are decoded anyway, and this avoids a native call per comparison.
 */
export function compareCodePoints(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    if (x >= 0xd800 && y >= 0xd800) return surrogatesLast(x) - surrogatesLast(y);
    return x - y;
  }
  return a.length - b.length;
}

function surrogatesLast(unit: number): number {
  return unit >= 0xe000 ? unit - 0x800 : unit + 0x2000;
}

function pairsValue(pairs: readonly FieldPair[], keepOrder: boolean): JsonValue {
  const obj: Record<string, JsonValue> = {};
  const names: string[] = [];
  let asObject = true;
  for (const { name, value } of pairs) {
    const n = utf8Text(name);
    if (n === undefined || Object.hasOwn(obj, n)) {
      asObject = false;
      break;
    }
    names.push(n);
    setField(obj, n, bytesValue(value));
  }
  if (asObject && keepOrder) asObject = Object.keys(obj).every((n, i) => n === names[i]);
  return asObject ? obj : pairs.map(({ name, value }) => [bytesValue(name), bytesValue(value)]);
}

/**
 * Sets an own field, `__proto__` included (plain assignment would set the prototype). Plain
 * objects rather than prototype-less ones: V8 keeps those in its slow dictionary mode, which
 * costs every document several microseconds to build and serialise.
 */
function setField(obj: Record<string, JsonValue>, name: string, value: JsonValue): void {
  if (name === '__proto__')
    Object.defineProperty(obj, name, { value, enumerable: true, writable: true, configurable: true });
  else obj[name] = value;
}

/** JSON has no infinities and no negative zero: those scores stay the text Redis prints. */
function scoreValue(score: string): number | string {
  if (score === 'inf' || score === '+inf') return 'inf';
  if (score === '-inf') return '-inf';
  const n = Number(score);
  return Object.is(n, -0) ? '-0' : n;
}

/**
 * `content`: the value's strings and numbers in document order, one per line, cut at
 * MAX_CONTENT_CHARS. Iterative and without a closure or a parts array: it runs for every
 * document of a default rule, over every field and item.
 */
function searchText(value: JsonValue): string {
  let out = '';
  let length = 0;
  let first = true;
  const stack: JsonValue[] = [value];
  while (stack.length > 0 && length < MAX_CONTENT_CHARS) {
    const v = stack.pop() as JsonValue; // the stack is not empty
    if (v === null) continue;
    if (typeof v === 'object') {
      // Bytes that are not text have no words to search.
      if (isBase64Marker(v)) continue;
      // Children pushed last to first, so they are taken in order.
      const children = Array.isArray(v) ? v : Object.values(v);
      for (let i = children.length - 1; i >= 0; i--) stack.push(children[i] as JsonValue);
      continue;
    }
    const s = typeof v === 'string' ? v : String(v);
    out = first ? s : `${out}\n${s}`;
    first = false;
    length += s.length + 1;
  }
  return out.length > MAX_CONTENT_CHARS ? out.slice(0, MAX_CONTENT_CHARS) : out;
}

/**
 * A string value: its text, JSON parsed as the rule asks when the parse is exact
 * (json-text.ts), or the `$base64` form when the bytes are not UTF-8.
 */
function stringValue(raw: Bytes, json: boolean | 'auto'): JsonValue {
  const text = utf8Text(raw);
  if (text === undefined) {
    if (json === true) throw new DocumentRejectedError('value is not UTF-8 text, so not JSON (rule has json: true)');
    return { [BASE64_MARKER]: asBuffer(raw).toString('base64') };
  }
  if (json === false) return text;
  if (json === 'auto' && !/^\s*\{/.test(text)) return text;
  const parsed = parseJsonExactly(text);
  if (parsed.ok) return json === 'auto' && !isPlainObject(parsed.value) ? text : parsed.value;
  if (json === true && parsed.why.startsWith('not valid JSON')) {
    throw new DocumentRejectedError(`value is ${parsed.why} (rule has json: true)`);
  }
  return text;
}

function shapeFields(value: JsonValue, shape: DocumentShape): JsonValue {
  if (!isPlainObject(value) || (!shape.keep && !shape.rename && !shape.coerce)) return value;
  let obj = value as Record<string, JsonValue>;
  if (shape.keep) {
    const kept: Record<string, JsonValue> = {};
    for (const f of shape.keep) {
      const v = Object.hasOwn(obj, f) ? obj[f] : undefined;
      if (v !== undefined) setField(kept, f, v);
    }
    obj = kept;
  }
  if (shape.coerce) {
    const coerced: Record<string, JsonValue> = {};
    for (const [f, v] of Object.entries(obj)) {
      const how = Object.hasOwn(shape.coerce, f) ? shape.coerce[f] : undefined;
      setField(coerced, f, how === undefined ? v : coerce(f, v, how));
    }
    obj = coerced;
  }
  if (shape.rename) {
    const renamed: Record<string, JsonValue> = {};
    for (const [f, v] of Object.entries(obj))
      setField(renamed, (Object.hasOwn(shape.rename, f) ? shape.rename[f] : undefined) ?? f, v);
    obj = renamed;
  }
  return obj;
}

export function coerce(field: string, value: JsonValue, to: Coercion): JsonValue {
  if (value === null) return null;
  const text = typeof value === 'string' ? value : JSON.stringify(value);
  const fail = (why: string): never => {
    throw new DocumentRejectedError(
      `field ${JSON.stringify(field)}: cannot coerce ${JSON.stringify(text)} to ${to}: ${why}`,
    );
  };
  switch (to) {
    case 'string':
      return text;
    case 'number': {
      const n = typeof value === 'number' ? value : Number(text.trim());
      if (text.trim() === '' || !Number.isFinite(n)) fail('not a finite number');
      return n;
    }
    case 'integer': {
      const n = typeof value === 'number' ? value : Number(text.trim());
      if (text.trim() === '' || !Number.isSafeInteger(n)) fail('not an integer');
      return n;
    }
    case 'boolean': {
      if (typeof value === 'boolean') return value;
      const t = text.trim().toLowerCase();
      if (['true', '1', 'yes', 'on'].includes(t)) return true;
      if (['false', '0', 'no', 'off'].includes(t)) return false;
      return fail('not a boolean (true/false/1/0/yes/no/on/off)');
    }
    case 'date': {
      const asNumber = Number(text);
      const date = text.trim() !== '' && Number.isFinite(asNumber) ? new Date(asNumber) : new Date(text);
      if (Number.isNaN(date.getTime())) fail('not a date');
      return date.toISOString();
    }
    case 'json':
      if (typeof value !== 'string') return value;
      try {
        return JSON.parse(value) as JsonValue;
      } catch (err) {
        return fail((err as Error).message);
      }
  }
}

function isPlainObject(v: unknown): boolean {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
