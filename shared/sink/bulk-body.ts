import type { DocOperation } from '../core/mapping/document';
import type { BulkOperation } from './port';

/**
 * One versioned write as bulk NDJSON lines (the format is the same on every supported engine):
 * the action line with external versioning, and for `index` the document's line. The action
 * line is written out rather than stringified from an object: it runs once per key, and
 * JSON.stringify of the two strings escapes them exactly as the object's would.
 */
export function bulkBody(op: DocOperation, version: number): BulkOperation {
  const meta = `{"_index":${indexJson(op.index)},"_id":${JSON.stringify(op.id)},"version":${version},"version_type":"external"}`;
  const body = op.op === 'index' ? `{"index":${meta}}\n${JSON.stringify(op.doc)}` : `{"delete":${meta}}`;
  return { op: op.op, index: op.index, id: op.id, version, body, bytes: Buffer.byteLength(body) };
}

// A worker writes to one index or a few: the last one's JSON spelling is kept.
let lastIndex = '';
let lastIndexJson = '""';

function indexJson(index: string): string {
  if (index !== lastIndex) {
    lastIndexJson = JSON.stringify(index);
    lastIndex = index;
  }
  return lastIndexJson;
}

/**
 * A bulk request's body: every operation's lines, each ending in a newline, encoded once into
 * one Buffer of the size their byte counts add up to, so the HTTP client neither joins strings
 * nor encodes and measures them again.
 */
export function bulkRequestBody(operations: readonly BulkOperation[]): Buffer {
  let size = 0;
  for (const o of operations) size += o.bytes + 1;
  const out = Buffer.allocUnsafe(size);
  let at = 0;
  for (const o of operations) {
    at += out.write(o.body, at, 'utf8');
    out[at++] = 0x0a;
  }
  return out;
}
