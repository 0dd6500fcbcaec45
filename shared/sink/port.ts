import type { AppConfig } from '../platform/config/schema';
import type { SourceOf } from '../platform/dependencies';
import type { DependencyError } from '../platform/errors';
import type { Logger } from '../platform/logger';

/**
 * The sink port: everything the pipeline needs from a search engine. One adapter per engine
 * (shared/sink/<engine>/) implements it; nothing above the sink layer imports an engine's client.
 * The search API's read side is the one exception the architecture allows (an engine-specific
 * query adapter, features/search).
 */

export type EngineProduct = 'elasticsearch' | 'opensearch';

/** What answered: the product, its version, and where it runs (e.g. Amazon OpenSearch Service). */
export interface EngineInfo {
  product: EngineProduct;
  version: string;
  /** e.g. 'amazon-opensearch-service'; absent for a self-run server. */
  distribution?: string;
}

/** What one bulk item's answer means for its job. */
export type ItemOutcome =
  | { kind: 'done'; result: 'indexed' | 'deleted' | 'already-newer' | 'already-absent' }
  | { kind: 'retry'; reason: string }
  | { kind: 'rejected'; reason: string };

/**
 * One versioned write (external versioning: the engine keeps it only when `version` is higher
 * than what it holds, and answers 409 otherwise, which is an outcome, `already-newer`).
 * `body` is the operation's bulk NDJSON lines (action line, and for `index` the source line),
 * built by `bulkBody` (shared/sink/bulk-body.ts): the bulk format is the same on every
 * supported engine, and the caller needs its size before sending.
 */
export interface BulkOperation {
  op: 'index' | 'delete';
  index: string;
  id: string;
  version: number;
  body: string;
  /** The body's size in UTF-8 bytes, measured once: it decides the chunks and sizes the request. */
  bytes: number;
  /**
   * The body as UTF-8 with its closing newline (`bytes` + 1 bytes), when it was encoded as it
   * was built: the request is then these bytes copied together, not the strings encoded again.
   */
  encoded?: Buffer;
}

export interface RequestOptions {
  signal?: AbortSignal;
  timeoutMs?: number;
}

export interface GetOptions extends RequestOptions {
  /** `_source` fields to fetch; default the whole source. */
  sourceFields?: readonly string[];
}

export interface ScannedDoc {
  index: string;
  id: string;
  source: Record<string, unknown>;
}

export interface ScanOptions {
  pageSize?: number;
  /** `_source` fields to fetch; `true` for the whole source. Default: the key fields. */
  sourceFields?: readonly string[] | true;
}

/** An index as the tool creates it: settings (gc_deletes, ...) and mappings. */
export interface IndexBody {
  settings: Record<string, unknown>;
  mappings: Record<string, unknown>;
}

/**
 * What a name is on the engine: an alias (and the indices behind it), an index, or nothing.
 * The tool writes through aliases (`<index>` → `<index>-g<n>`, shared/sink/indices.ts); a
 * deployment from before aliases has a concrete index under the name instead.
 */
export type IndexName = { kind: 'alias'; indices: string[] } | { kind: 'index' } | { kind: 'missing' };

/**
 * One step of an atomic alias update (one `_aliases` request: all steps happen, or none).
 * `removeIndex` deletes a concrete index in the same step, which is how a name held by an index
 * becomes an alias without a moment where it resolves to nothing.
 */
export type AliasAction =
  | { add: { index: string; alias: string } }
  | { remove: { index: string; alias: string } }
  | { removeIndex: { index: string } };

/** A raw query-DSL search: the search API's queries are the same DSL on every supported engine. */
export type SearchOptions = RequestOptions;

export interface SearchHit {
  index: string;
  id: string;
  score: number | null;
  source: Record<string, unknown>;
  /** The hit's sort values, when the body sorted: `search_after` for the next page. */
  sort?: unknown[];
}

export interface SearchResult {
  hits: SearchHit[];
  /** The total the engine reports (exact up to its `track_total_hits` bound), and whether it is a lower bound. */
  total: { value: number; relation: 'eq' | 'gte' };
  /** False when the search timed out or a shard failed: the hits are what was found in time. */
  complete: boolean;
}

/** `search` rejects with this when the engine refused the query itself (400: syntax, a sort on a text field). */
export class QueryRefusedError extends Error {
  override readonly name = 'QueryRefusedError';
}

/** What every adapter's factory takes. */
export interface SinkOptions {
  connection: AppConfig['elasticsearch'];
  engine: EngineInfo;
  logger: Logger;
  sourceOf: SourceOf;
}

export interface Sink {
  /** The engine that answered at start-up (known once the first call, `health` at start-up, has returned). */
  readonly engine: EngineInfo;
  /**
   * Sends the operations as one bulk request. Resolves with one outcome per operation, in
   * order (an item the engine did not answer is `retry`); rejects only when the whole request
   * failed, and then `isTransient` says whether to send it again.
   */
  bulk(operations: readonly BulkOperation[], options?: RequestOptions): Promise<ItemOutcome[]>;
  /** Worth retrying: unreachable, timed out, overloaded (429) or failing (5xx). */
  isTransient(err: unknown): boolean;
  /** One line for logs and failure records (status, error type, reason); never credentials. */
  describeError(err: unknown): string;
  /**
   * Every document of an index in pages, from one consistent view (point in time or the
   * engine's equivalent) taken after a refresh, so everything indexed before the call is seen.
   * A missing index yields nothing.
   */
  scan(index: string, options?: ScanOptions): AsyncGenerator<ScannedDoc[]>;
  /** The documents' sources by id, in order; `undefined` where there is none. */
  getDocuments(
    index: string,
    ids: readonly string[],
    options?: GetOptions,
  ): Promise<(Record<string, unknown> | undefined)[]>;
  /**
   * A query-DSL search body (query, size, from, sort, _source, search_after, track_total_hits, ...)
   * over one or more indices (comma-separated). A missing index is an error of the engine.
   */
  search(index: string, body: Record<string, unknown>, options?: SearchOptions): Promise<SearchResult>;
  /** Documents in the index after a refresh; 0 when it does not exist. */
  count(index: string): Promise<number>;
  indexExists(index: string): Promise<boolean>;
  /**
   * Creates the index unless it exists; safe to race between pods. With `alias`, the index is
   * created already behind that alias (one request, so the alias never points at nothing).
   */
  createIndex(index: string, body: IndexBody, options?: { alias?: string }): Promise<'created' | 'exists'>;
  /** Deletes a concrete index (never through an alias); `absent` when there was none. */
  deleteIndex(index: string): Promise<'deleted' | 'absent'>;
  /** Whether `name` is an alias (and of which indices), an index, or missing. */
  resolveIndex(name: string): Promise<IndexName>;
  /** Applies the actions in one atomic `_aliases` request. */
  updateAliases(actions: readonly AliasAction[]): Promise<void>;
  /** Makes everything written so far searchable. */
  refresh(index: string): Promise<void>;
  /** One bounded round trip proving the engine answers (used by probes and /readyz). */
  health(timeoutMs: number): Promise<void>;
  /** A failure of any call, as the operator-facing error that names the endpoint and the cause. */
  dependencyError(err: unknown, context: { timeoutMs?: number; tried?: string }): DependencyError;
  close(): Promise<void>;
}

/** What every adapter's factory is given. */
export interface SinkOptions {
  connection: AppConfig['elasticsearch'];
  engine: EngineInfo;
  logger: Logger;
  /** Where each setting came from, for the hints of operator-facing errors. */
  sourceOf: SourceOf;
}
