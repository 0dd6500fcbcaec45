import type { JsonValue } from './document';

/**
 * Elasticsearch refuses a document nested deeper than 1000 levels; the value sits one level
 * below the document, and a little room is kept for a rule index's own wrapping.
 */
export const MAX_JSON_DEPTH = 990;

export type ExactParse = { ok: true; value: JsonValue } | { ok: false; why: string };

/**
 * Parses JSON text only when the result says exactly what the text says: the same keys in the
 * same order, each once, the same strings and every number digit for digit. Whitespace and the
 * way a string's characters are escaped are the only things not kept (docs/bytes.md).
 *
 * The test is that the text, with whitespace outside strings removed and each string written
 * as JSON.stringify writes it, equals JSON.stringify of the parse. That catches what a plain
 * JSON.parse changes silently: numbers past 2^53 or with more digits than a double holds
 * (`12345678901234567890`, `0.10000000000000000001`), other spellings of a number (`1.0`,
 * `1e3`, `-0`), a repeated key (the last would win) and integer-like keys out of ascending
 * order (a JS object moves them first).
 */
export function parseJsonExactly(text: string): ExactParse {
  let value: JsonValue;
  try {
    value = JSON.parse(text) as JsonValue;
  } catch (err) {
    return { ok: false, why: `not valid JSON: ${(err as Error).message}` };
  }
  const canonical = canonicalJsonText(text);
  if (canonical.depth > MAX_JSON_DEPTH) return { ok: false, why: `nested ${canonical.depth} levels deep, over ${MAX_JSON_DEPTH}` };
  if (canonical.text !== JSON.stringify(value)) return { ok: false, why: 'parsing would change it (a number, a repeated key or the key order)' };
  if (isBase64Marker(value)) return { ok: false, why: `it looks like the ${BASE64_MARKER} form of bytes` };
  return { ok: true, value };
}

/** Valid JSON text without insignificant whitespace, its strings in JSON.stringify's spelling. */
function canonicalJsonText(text: string): { text: string; depth: number } {
  let out = '';
  let depth = 0;
  let maxDepth = 0;
  let i = 0;
  while (i < text.length) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      let j = i + 1;
      while (text.charCodeAt(j) !== 0x22) j += text.charCodeAt(j) === 0x5c ? 2 : 1;
      out += JSON.stringify(JSON.parse(text.slice(i, j + 1)) as string);
      i = j + 1;
      continue;
    }
    if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) {
      i++;
      continue;
    }
    if (c === 0x7b || c === 0x5b) maxDepth = Math.max(maxDepth, ++depth);
    else if (c === 0x7d || c === 0x5d) depth--;
    out += text[i];
    i++;
  }
  return { text: out, depth: maxDepth };
}

/** The one key of the object that stands for bytes that are not UTF-8 text. */
export const BASE64_MARKER = '$base64';

/** `{"$base64": "..."}`: bytes that are not UTF-8 text. */
export function isBase64Marker(v: unknown): v is { [BASE64_MARKER]: string } {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const keys = Object.keys(v);
  return keys.length === 1 && keys[0] === BASE64_MARKER && typeof (v as Record<string, unknown>)[BASE64_MARKER] === 'string';
}
