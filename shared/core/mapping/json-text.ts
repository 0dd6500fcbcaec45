/** A value JSON can carry: what a document's fields hold. */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [k: string]: JsonValue };

/**
 * Elasticsearch refuses a document nested deeper than 1000 levels; the value sits one level
 * below the document, and a little room is kept for a rule index's own wrapping.
 */
const MAX_JSON_DEPTH = 990;

export type ExactParse = { ok: true; value: JsonValue } | { ok: false; why: string };

/**
 * Parses JSON text only when the result says exactly what the text says: the same keys in the
 * same order, each once, the same strings and every number digit for digit. Whitespace and the
 * way a string's characters are escaped are the only things not kept (docs/bytes.md).
 *
 * What a plain JSON.parse changes silently, and how each is caught: a number that does not
 * print back as written (past 2^53, more digits than a double holds, `1.0`, `1e3`, `-0`) by
 * comparing each number token with its value's spelling; a repeated key (the last would win)
 * by counting keys in the text and in the result; integer-like keys out of ascending order (a
 * JS object moves them first), when the text has such a key at all, by comparing the whole
 * text, canonicalised, with JSON.stringify of the result.
 */
export function parseJsonExactly(text: string): ExactParse {
  let value: JsonValue;
  try {
    value = JSON.parse(text) as JsonValue;
  } catch (err) {
    return { ok: false, why: `not valid JSON: ${(err as Error).message}` };
  }
  const shape = scanTokens(text);
  if (shape.depth > MAX_JSON_DEPTH)
    return { ok: false, why: `nested ${shape.depth} levels deep, over ${MAX_JSON_DEPTH}` };
  const changed =
    shape.inexactNumber ||
    shape.keys !== countKeys(value) ||
    (shape.integerLikeKey && canonicalJsonText(text) !== JSON.stringify(value));
  if (changed) return { ok: false, why: 'parsing would change it (a number, a repeated key or the key order)' };
  if (isBase64Marker(value)) return { ok: false, why: `it looks like the ${BASE64_MARKER} form of bytes` };
  return { ok: true, value };
}

interface TokenShape {
  depth: number;
  keys: number;
  inexactNumber: boolean;
  integerLikeKey: boolean;
}

// A key a JS object orders before the others: a canonical array index.
const INTEGER_LIKE = /^(?:0|[1-9]\d{0,9})$/;

/** One pass over text JSON.parse accepted: nesting depth, object keys, number spellings. */
function scanTokens(text: string): TokenShape {
  const out: TokenShape = { depth: 0, keys: 0, inexactNumber: false, integerLikeKey: false };
  let depth = 0;
  let i = 0;
  const n = text.length;
  while (i < n) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      let end = text.indexOf('"', i + 1);
      // A quote preceded by an odd run of backslashes is escaped.
      for (;;) {
        let b = end - 1;
        while (text.charCodeAt(b) === 0x5c) b--;
        if ((end - 1 - b) % 2 === 0) break;
        end = text.indexOf('"', end + 1);
      }
      let j = end + 1;
      while (j < n && isSpace(text.charCodeAt(j))) j++;
      if (text.charCodeAt(j) === 0x3a) {
        out.keys++;
        // Only a name starting with a digit (or an escape, which may spell one) can be integer-like.
        const c1 = text.charCodeAt(i + 1);
        if ((c1 < 0x30 || c1 > 0x39) && c1 !== 0x5c) {
          i = end + 1;
          continue;
        }
        const raw = text.slice(i + 1, end);
        const name = raw.includes('\\') ? (JSON.parse(text.slice(i, end + 1)) as string) : raw;
        if (INTEGER_LIKE.test(name) && Number(name) < 4294967295) out.integerLikeKey = true;
      }
      i = end + 1;
    } else if (c === 0x2d || (c >= 0x30 && c <= 0x39)) {
      let j = i + 1;
      let digitsOnly = c !== 0x2d;
      while (j < n && isNumberChar(text.charCodeAt(j))) {
        const d = text.charCodeAt(j);
        if (d < 0x30 || d > 0x39) digitsOnly = false;
        j++;
      }
      // A plain integer of up to 15 digits prints back as written (JSON.parse accepted it, so it
      // has no leading zero): the common case needs no slice and no conversion either way.
      if (!digitsOnly || j - i > 15) {
        const token = text.slice(i, j);
        if (String(Number(token)) !== token) out.inexactNumber = true;
      }
      i = j;
    } else {
      if (c === 0x7b || c === 0x5b) out.depth = Math.max(out.depth, ++depth);
      else if (c === 0x7d || c === 0x5d) depth--;
      i++;
    }
  }
  return out;
}

function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d;
}

function isNumberChar(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || c === 0x2e || c === 0x65 || c === 0x45 || c === 0x2b || c === 0x2d;
}

function countKeys(v: JsonValue): number {
  if (typeof v !== 'object' || v === null) return 0;
  let keys = 0;
  if (Array.isArray(v)) {
    for (const x of v) keys += countKeys(x);
    return keys;
  }
  // A parsed JSON object: its own enumerable keys are all of them.
  for (const x of Object.values(v)) keys += 1 + countKeys(x);
  return keys;
}

/** Valid JSON text without insignificant whitespace, its strings in JSON.stringify's spelling. */
function canonicalJsonText(text: string): string {
  let out = '';
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
    if (isSpace(c)) {
      i++;
      continue;
    }
    out += text.charAt(i);
    i++;
  }
  return out;
}

/** The one key of the object that stands for bytes that are not UTF-8 text. */
export const BASE64_MARKER = '$base64';

/** `{"$base64": "..."}`: bytes that are not UTF-8 text. */
export function isBase64Marker(v: unknown): v is { [BASE64_MARKER]: string } {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  // Asked of every object of every document: most lack the marker, which a lookup tells
  // without listing their keys (a plain object inherits no `$base64`).
  if (typeof (v as Record<string, unknown>)[BASE64_MARKER] !== 'string') return false;
  const keys = Object.keys(v);
  return (
    keys.length === 1 && keys[0] === BASE64_MARKER && typeof (v as Record<string, unknown>)[BASE64_MARKER] === 'string'
  );
}
