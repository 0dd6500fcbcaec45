import type { DocOperation } from '../core/mapping/document';
import type { BulkOperation } from './port';

/**
 * One versioned write as bulk NDJSON lines (the format is the same on every supported engine):
 * the action line with external versioning, and for `index` the document's line.
 */
export function bulkBody(op: DocOperation, version: number): BulkOperation {
  const meta = { _index: op.index, _id: op.id, version, version_type: 'external' };
  const body =
    op.op === 'index'
      ? `${JSON.stringify({ index: meta })}\n${JSON.stringify(op.doc)}`
      : JSON.stringify({ delete: meta });
  return { op: op.op, index: op.index, id: op.id, version, body };
}
