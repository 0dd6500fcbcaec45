import { isUtf8 } from 'node:buffer';

/**
 * Redis key names are byte strings. Inside the tool a key travels as a JS string in a
 * lossless "escaped" form, so it can be a Map key, sit in a job's JSON and be compared with
 * `===` like any other string:
 *
 * - bytes that are valid UTF-8 decode to their text, exactly as `buf.toString('utf8')` does
 *   (ordinary keys look and behave as they always did);
 * - every byte that is not part of a valid UTF-8 sequence becomes the lone surrogate
 *   U+DC00 + byte (U+DC80 to U+DCFF; bytes below 0x80 are always valid).
 *
 * Valid UTF-8 never decodes to a lone surrogate, so the form is unambiguous and
 * `keyToBytes(keyFromBytes(b))` equals `b` for every byte string `b`. JSON.stringify writes a
 * lone surrogate as a `\udcXX` escape and JSON.parse reads it back, so a job carries a binary
 * key without loss (docs/bytes.md).
 *
 * Values are not carried this way: the worker reads them as Buffers and builds the document
 * from the bytes.
 */
export function keyFromBytes(buf: Buffer): string {
  if (isUtf8(buf)) return buf.toString('utf8');
  let out = '';
  let i = 0;
  while (i < buf.length) {
    const n = validSequenceLength(buf, i);
    if (n > 0) {
      out += buf.toString('utf8', i, i + n);
      i += n;
    } else {
      out += String.fromCharCode(0xdc00 + buf.readUInt8(i));
      i += 1;
    }
  }
  return out;
}

// Lone surrogates in the escape range; with the `u` flag the low half of a real surrogate pair
// (a character outside the BMP) is part of one code point and does not match.
const ESCAPED = /[\udc80-\udcff]/u;

/** True when the escaped key stands for bytes that are not valid UTF-8. */
export function isBinaryKey(key: string): boolean {
  return ESCAPED.test(key);
}

/** The exact bytes an escaped key stands for. */
export function keyToBytes(key: string): Buffer {
  if (!ESCAPED.test(key)) return Buffer.from(key, 'utf8');
  const parts: Buffer[] = [];
  let text = '';
  for (const ch of key) {
    const cp = ch.codePointAt(0) ?? 0; // one code point of the string: never empty
    if (cp >= 0xdc80 && cp <= 0xdcff) {
      if (text) parts.push(Buffer.from(text, 'utf8'));
      text = '';
      parts.push(Buffer.of(cp - 0xdc00));
    } else {
      text += ch;
    }
  }
  if (text) parts.push(Buffer.from(text, 'utf8'));
  return Buffer.concat(parts);
}

/**
 * What to hand ioredis for a key: the string itself when it is text (ioredis sends it as
 * UTF-8, which is exact), the bytes otherwise (a string with lone surrogates would be sent
 * with U+FFFD in their place).
 */
export function keyArg(key: string): string | Buffer {
  return ESCAPED.test(key) ? keyToBytes(key) : key;
}

export function keyArgs(keys: readonly string[]): (string | Buffer)[] {
  return keys.map(keyArg);
}

/** A key for logs and reports: the text, with each byte that is not UTF-8 as `\xHH`. */
export function displayKey(key: string): string {
  if (!ESCAPED.test(key)) return key;
  let out = '';
  for (const ch of key) {
    const cp = ch.codePointAt(0) ?? 0; // one code point of the string: never empty
    out += cp >= 0xdc80 && cp <= 0xdcff ? `\\x${(cp - 0xdc00).toString(16).padStart(2, '0')}` : ch;
  }
  return out;
}

/**
 * Length of the valid UTF-8 sequence starting at `i`, or 0 when the byte there does not
 * start one (strict UTF-8: no overlong forms, no surrogates, nothing above U+10FFFF).
 */
function validSequenceLength(buf: Buffer, i: number): number {
  const b0 = buf.readUInt8(i); // callers stay below buf.length
  if (b0 < 0x80) return 1;
  const cont = (j: number, lo = 0x80, hi = 0xbf): boolean => {
    const b = buf[i + j];
    return b !== undefined && b >= lo && b <= hi;
  };
  if (b0 >= 0xc2 && b0 <= 0xdf) return cont(1) ? 2 : 0;
  if (b0 === 0xe0) return cont(1, 0xa0) && cont(2) ? 3 : 0;
  if (b0 === 0xed) return cont(1, 0x80, 0x9f) && cont(2) ? 3 : 0;
  if (b0 >= 0xe1 && b0 <= 0xef) return cont(1) && cont(2) ? 3 : 0;
  if (b0 === 0xf0) return cont(1, 0x90) && cont(2) && cont(3) ? 4 : 0;
  if (b0 >= 0xf1 && b0 <= 0xf3) return cont(1) && cont(2) && cont(3) ? 4 : 0;
  if (b0 === 0xf4) return cont(1, 0x80, 0x8f) && cont(2) && cont(3) ? 4 : 0;
  return 0;
}
