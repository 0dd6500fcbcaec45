/** What one bulk item's answer means for its job. */
export type ItemOutcome =
  | { kind: 'done'; result: 'indexed' | 'deleted' | 'already-newer' | 'already-absent' }
  | { kind: 'retry'; reason: string }
  | { kind: 'rejected'; reason: string };

export interface BulkItemResponse {
  status: number;
  result?: string;
  error?: { type?: string; reason?: string | null; caused_by?: { type?: string; reason?: string | null } };
}

export function classifyItem(op: 'index' | 'delete', item: BulkItemResponse): ItemOutcome {
  const { status } = item;
  if (status >= 200 && status < 300) return { kind: 'done', result: op === 'index' ? 'indexed' : 'deleted' };
  // External versioning: a conflict means Elasticsearch already holds this or a newer version.
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
