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
  const encoded = encode(body);
  return { op: op.op, index: op.index, id: op.id, version, body, bytes: encoded.length - 1, encoded };
}

/** Bodies are encoded into shared slabs, each body a view of its bytes: one allocation per slab, not per body. */
const SLAB_BYTES = 256 * 1024;
let slab = Buffer.allocUnsafe(SLAB_BYTES);
let slabUsed = 0;

/**
 * The body's UTF-8 bytes and a newline, encoded once: the encoding measures it as it writes.
 * A slab's bytes are never written twice (a full slab is left to the views into it), so every
 * view stays as it was made.
 */
function encode(body: string): Buffer {
  // UTF-8 takes at most 3 bytes per UTF-16 unit; a large body gets a buffer of its own.
  const most = body.length * 3 + 1;
  if (most > SLAB_BYTES / 8) {
    const own = Buffer.allocUnsafe(Buffer.byteLength(body) + 1);
    own[own.write(body, 0, 'utf8')] = 0x0a;
    return own;
  }
  if (slabUsed + most > SLAB_BYTES) {
    slab = Buffer.allocUnsafe(SLAB_BYTES);
    slabUsed = 0;
  }
  const start = slabUsed;
  const end = start + slab.write(body, start, 'utf8');
  slab[end] = 0x0a;
  slabUsed = end + 1;
  return slab.subarray(start, slabUsed);
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
 * A bulk request's body: every operation's lines, each ending in a newline, in one Buffer of the
 * size their byte counts add up to (copied from each operation's encoded bytes, or encoded here
 * for an operation built without them), so the HTTP client neither joins strings nor encodes
 * and measures them again.
 */
export function bulkRequestBody(operations: readonly BulkOperation[]): Buffer {
  let size = 0;
  for (const o of operations) size += o.bytes + 1;
  const out = Buffer.allocUnsafe(size);
  let at = 0;
  for (const o of operations) {
    if (o.encoded) {
      out.set(o.encoded, at);
      at += o.encoded.length;
    } else {
      at += out.write(o.body, at, 'utf8');
      out[at++] = 0x0a;
    }
  }
  return out;
}
