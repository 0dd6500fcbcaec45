import type { BulkOperation, ItemOutcome, SearchResult } from './port';

/** One item of a bulk answer; the shape is the same on every supported engine. */
export interface BulkItemResponse {
  status: number;
  result?: string;
  error?: { type?: string; reason?: string | null; caused_by?: { type?: string; reason?: string | null } };
}

// The outcomes that carry no reason, shared: one per item of every bulk answer otherwise.
const INDEXED: ItemOutcome = Object.freeze({ kind: 'done', result: 'indexed' });
const DELETED: ItemOutcome = Object.freeze({ kind: 'done', result: 'deleted' });
const ALREADY_NEWER: ItemOutcome = Object.freeze({ kind: 'done', result: 'already-newer' });
const ALREADY_ABSENT: ItemOutcome = Object.freeze({ kind: 'done', result: 'already-absent' });

/** What an item's status means: the same on every supported engine (an adapter maps any difference to it). */
export function classifyItem(op: 'index' | 'delete', item: BulkItemResponse): ItemOutcome {
  const { status } = item;
  if (status >= 200 && status < 300) return op === 'index' ? INDEXED : DELETED;
  // External versioning: a conflict means the engine already holds this or a newer version.
  if (status === 409) return ALREADY_NEWER;
  if (op === 'delete' && status === 404) return ALREADY_ABSENT;
  const reason = describeItemError(item);
  if (status === 429 || status >= 500) return { kind: 'retry', reason };
  return { kind: 'rejected', reason };
}

function describeItemError(item: BulkItemResponse): string {
  const e = item.error;
  if (!e) return `status ${item.status}`;
  const cause = e.caused_by?.reason ? ` (caused by ${e.caused_by.type ?? 'error'}: ${e.caused_by.reason})` : '';
  return `${item.status} ${e.type ?? 'error'}: ${e.reason ?? ''}${cause}`;
}

/**
 * One outcome per operation, in order, from a bulk answer's items. One item per action is the
 * protocol; an operation without one has an unknown outcome, and a versioned write is safe to
 * send again.
 */
export function bulkOutcomes(
  operations: readonly BulkOperation[],
  items: readonly (Record<string, BulkItemResponse | undefined> | undefined)[],
): ItemOutcome[] {
  return operations.map((op, i): ItemOutcome => {
    const entry = items[i];
    // The entry's one key is the operation's action: looked up by name, without listing the keys.
    const item = entry ? (entry[op.op] ?? Object.values(entry)[0]) : undefined;
    if (item === undefined) return { kind: 'retry', reason: 'the bulk answer has no item for this operation' };
    return classifyItem(op.op, item);
  });
}

/** A search answer, in the shape every supported engine gives it. */
export interface SearchAnswer {
  timed_out?: boolean;
  _shards?: { failed?: number };
  hits: {
    total?: number | { value: number; relation: 'eq' | 'gte' };
    hits: {
      _index: string;
      _id?: string;
      _score?: number | null;
      _source?: Record<string, unknown>;
      sort?: unknown[];
    }[];
  };
}

export function searchResult(answer: SearchAnswer): SearchResult {
  const total = answer.hits.total;
  return {
    hits: answer.hits.hits.map((h) => ({
      index: h._index,
      id: h._id ?? '',
      score: h._score ?? null,
      source: h._source ?? {},
      ...(h.sort ? { sort: h.sort } : {}),
    })),
    total: typeof total === 'number' ? { value: total, relation: 'eq' } : (total ?? { value: 0, relation: 'eq' }),
    complete: answer.timed_out !== true && (answer._shards?.failed ?? 0) === 0,
  };
}
