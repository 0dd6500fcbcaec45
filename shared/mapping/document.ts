import { createHash } from 'node:crypto';
import { DocumentRejectedError } from '../errors';
import type { KeyState } from '../key-state';
import type { Coercion } from '../config/schema';

export type JsonValue = string | number | boolean | null | JsonValue[] | { [k: string]: JsonValue };

/** The document a key becomes; `key` and `db` are always kept so verify and reconcile can find it again. */
export interface SyncDocument {
  key: string;
  db: number;
  type: string;
  value?: JsonValue;
  ttl_ms?: number;
  [field: string]: JsonValue | undefined;
}

export interface TransformContext {
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

export type DocOperation =
  | { op: 'index'; index: string; id: string; doc: SyncDocument }
  | { op: 'delete'; index: string; id: string };

/** Elasticsearch rejects `_id`s over 512 bytes; such keys get a stable hash id (the key stays in the doc). */
export const MAX_ID_BYTES = 512;

export function documentId(id: string): string {
  if (Buffer.byteLength(id, 'utf8') <= MAX_ID_BYTES) return id;
  return `sha256:${createHash('sha256').update(id, 'utf8').digest('hex')}`;
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
  return doc ? { op: 'index', index: target.index, id: target.id, doc } : { op: 'delete', index: target.index, id: target.id };
}

export function buildDocument(
  shape: DocumentShape,
  db: number,
  key: string,
  state: Exclude<KeyState, { exists: false }>,
): SyncDocument | null {
  let doc: SyncDocument;
  if (state.type === 'unsupported') {
    doc = { key, db, type: state.redisType };
  } else {
    let value: JsonValue;
    switch (state.type) {
      case 'string':
        value = parseStringValue(state.value, shape.json);
        break;
      case 'hash':
        value = state.value;
        break;
      case 'list':
      case 'set':
        value = state.value;
        break;
      case 'zset':
        value = state.value.map((e) => ({ member: e.member, score: e.score }));
        break;
      case 'stream':
        value = state.value.map((e) => ({ id: e.id, fields: e.fields }));
        break;
    }
    doc = { key, db, type: state.type, value: shapeFields(value, shape) };
    if (shape.searchText) doc.content = searchText(doc.value as JsonValue);
  }
  if (state.ttlMs !== undefined) doc.ttl_ms = state.ttlMs;
  if (!shape.transform) return doc;
  let out: SyncDocument | null | undefined;
  try {
    out = shape.transform(doc, { key, db, type: doc.type });
  } catch (err) {
    throw new DocumentRejectedError(`transform failed: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (out === null || out === undefined) return null;
  return { ...out, key, db };
}

function searchText(value: JsonValue): string {
  const parts: string[] = [];
  let length = 0;
  const walk = (v: JsonValue): void => {
    if (length >= MAX_CONTENT_CHARS || v === null) return;
    if (typeof v === 'object') {
      for (const child of Array.isArray(v) ? v : Object.values(v)) walk(child);
      return;
    }
    const s = String(v);
    parts.push(s);
    length += s.length + 1;
  };
  walk(value);
  return parts.join('\n').slice(0, MAX_CONTENT_CHARS);
}

function parseStringValue(raw: string, json: boolean | 'auto'): JsonValue {
  if (json === false) return raw;
  if (json === 'auto') {
    if (!/^\s*\{/.test(raw)) return raw;
    try {
      const parsed: unknown = JSON.parse(raw);
      return isPlainObject(parsed) ? (parsed as JsonValue) : raw;
    } catch {
      return raw;
    }
  }
  try {
    return JSON.parse(raw) as JsonValue;
  } catch (err) {
    throw new DocumentRejectedError(`value is not valid JSON (rule has json: true): ${(err as Error).message}`);
  }
}

function shapeFields(value: JsonValue, shape: DocumentShape): JsonValue {
  if (!isPlainObject(value) || (!shape.keep && !shape.rename && !shape.coerce)) return value;
  let obj: Record<string, JsonValue> = value as Record<string, JsonValue>;
  if (shape.keep) {
    const kept: Record<string, JsonValue> = {};
    for (const f of shape.keep) if (f in obj) kept[f] = obj[f];
    obj = kept;
  }
  if (shape.coerce) {
    obj = { ...obj };
    for (const [field, to] of Object.entries(shape.coerce)) {
      if (field in obj) obj[field] = coerce(field, obj[field], to);
    }
  }
  if (shape.rename) {
    const renamed: Record<string, JsonValue> = {};
    for (const [f, v] of Object.entries(obj)) renamed[shape.rename[f] ?? f] = v;
    obj = renamed;
  }
  return obj;
}

export function coerce(field: string, value: JsonValue, to: Coercion): JsonValue {
  if (value === null) return null;
  const text = typeof value === 'string' ? value : JSON.stringify(value);
  const fail = (why: string): never => {
    throw new DocumentRejectedError(`field ${JSON.stringify(field)}: cannot coerce ${JSON.stringify(text)} to ${to}: ${why}`);
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
