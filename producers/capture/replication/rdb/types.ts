/** RDB values are decoded as text: replication mode uses the decoder to find keys, the worker reads values itself. */
export interface ZsetEntry {
  member: string;
  score: number;
}

export interface StreamEntry {
  id: string;
  fields: Record<string, string>;
}

/**
 * A decoded value, in the shapes shared/core/key-state.ts reads from a live server: sets sorted in
 * byte order, zsets in ZRANGE order, streams in ID order without deleted entries. Scores keep
 * their real value (±Infinity, NaN never occurs in Redis). Module values cannot be decoded
 * without the module; only their module's name is known.
 */
export type RdbValue =
  | { type: 'string'; value: string }
  | { type: 'list'; value: string[] }
  | { type: 'set'; value: string[] }
  | { type: 'zset'; value: ZsetEntry[] }
  | { type: 'hash'; value: Record<string, string> }
  | { type: 'stream'; value: StreamEntry[] }
  | { type: 'module'; moduleName: string; moduleVersion: number };

/** How the value was stored, named as OBJECT ENCODING names it where the two coincide. */
export type RdbEncoding =
  | 'string'
  | 'linkedlist'
  | 'ziplist'
  | 'quicklist'
  | 'hashtable'
  | 'intset'
  | 'listpack'
  | 'listpackex'
  | 'skiplist'
  | 'zipmap'
  | 'stream'
  | 'module';

export type DecodedValue = RdbValue & { rdbType: number; encoding: RdbEncoding };

export type RdbKeyRecord = DecodedValue & {
  kind: 'key';
  db: number;
  /** Escaped (shared/core/bytes.ts): a name that is not UTF-8 keeps its bytes. */
  key: string;
  /** Absolute expiry, milliseconds since the epoch; absent for keys without a TTL. */
  expireAtMs?: number;
};

/** A key without its value (readRdbKeys). */
export interface RdbKeyRef {
  kind: 'key';
  db: number;
  /** Escaped (shared/core/bytes.ts): a name that is not UTF-8 keeps its bytes. */
  key: string;
  rdbType: number;
  expireAtMs?: number;
}

export type RdbRecord = RdbKeyRecord | RdbMetaRecord;

export type RdbMetaRecord =
  /** An AUX field (redis-ver, repl-id, repl-offset, ...). */
  | { kind: 'aux'; name: string; value: string }
  /** A function library's source (FUNCTION LOAD), Redis 7.0+. */
  | { kind: 'function'; code: string }
  /** A database's size hint; announced before its keys. */
  | { kind: 'resizedb'; db: number; keys: number; expires: number };
