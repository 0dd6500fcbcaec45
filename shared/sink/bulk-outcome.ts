import type { ItemOutcome } from './port';

/** One item of a bulk answer; the shape is the same on every supported engine. */
export interface BulkItemResponse {
  status: number;
  result?: string;
  error?: { type?: string; reason?: string | null; caused_by?: { type?: string; reason?: string | null } };
}

/** What an item's status means: the same on every supported engine (an adapter maps any difference to it). */
export function classifyItem(op: 'index' | 'delete', item: BulkItemResponse): ItemOutcome {
  const { status } = item;
  if (status >= 200 && status < 300) return { kind: 'done', result: op === 'index' ? 'indexed' : 'deleted' };
  // External versioning: a conflict means the engine already holds this or a newer version.
  if (status === 409) return { kind: 'done', result: 'already-newer' };
  if (op === 'delete' && status === 404) return { kind: 'done', result: 'already-absent' };
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
