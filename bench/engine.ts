import type { SyncDocument } from '../shared/core/mapping/document';

/** The engines the bench can start, by the names `--engines` takes, and the version each one means. */
export const ENGINES = {
  'elasticsearch-8': { product: 'elasticsearch', version: '8.19.9' },
  'elasticsearch-9': { product: 'elasticsearch', version: '9.2.0' },
  'opensearch-2': { product: 'opensearch', version: '2.19.6' },
  'opensearch-3': { product: 'opensearch', version: '3.6.0' },
} as const satisfies Record<string, { product: EngineProduct; version: string }>;
export type EngineName = keyof typeof ENGINES;
export type EngineProduct = 'elasticsearch' | 'opensearch';

export function isEngineName(name: string): name is EngineName {
  return Object.hasOwn(ENGINES, name);
}

/** One document of a bulk-limit baseline: its id and what the pipeline would index for it. */
export interface BaselineDocument {
  id: string;
  doc: SyncDocument;
}

/**
 * What the harness itself asks of an engine, through that engine's own client: the baselines
 * (its bulk helper, one request per key) and the probes that read documents back measure the
 * engine, beside the pipeline under test, which goes through the tool's sink port.
 */
export interface EngineClient {
  readonly product: EngineProduct;
  deleteIndices(pattern: string): Promise<void>;
  createIndex(index: string, settings: Record<string, unknown>, mappings: Record<string, unknown>): Promise<void>;
  refresh(index: string): Promise<void>;
  count(index: string): Promise<number>;
  /** One index request, awaited: the naive baseline. */
  indexOne(index: string, id: string, document: SyncDocument): Promise<void>;
  /** `_source.value.seq` of each id (0 when missing), in the order asked: the live probes. */
  seqOf(index: string, ids: readonly string[]): Promise<number[]>;
  /** The engine's own bulk limit: its client's bulk helper, 5 MB requests, 2 in flight; documents indexed. */
  bulkHelper(index: string, docs: AsyncIterable<BaselineDocument>): Promise<number>;
  close(): Promise<void>;
}

/** Bulk helper settings both engines' baselines share, so their limits compare. */
export const BULK_HELPER = { flushBytes: 5 * 1024 * 1024, concurrency: 2 } as const;
