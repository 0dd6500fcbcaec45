import { RdbFormatError } from './errors';

/**
 * LZF decompression (the format Redis writes for compressed strings with `rdbcompression yes`).
 * A control byte below 32 starts a literal run of ctrl+1 bytes; otherwise its top 3 bits are a
 * match length (7 = "read one more length byte"), its low 5 bits and the next byte a distance
 * back into the output, and length+2 bytes are copied from there (byte by byte: runs may overlap).
 */
export function lzfDecompress(input: Uint8Array, outputLength: number): Buffer {
  const out = Buffer.allocUnsafe(outputLength);
  let ip = 0;
  let op = 0;
  while (ip < input.length) {
    const ctrl = input[ip++] as number;
    if (ctrl < 32) {
      const run = ctrl + 1;
      if (ip + run > input.length) throw new RdbFormatError('LZF literal run past the end of the input');
      if (op + run > outputLength) throw new RdbFormatError('LZF output longer than announced');
      out.set(input.subarray(ip, ip + run), op);
      ip += run;
      op += run;
      continue;
    }
    let len = ctrl >> 5;
    if (ip >= input.length) throw new RdbFormatError('LZF back reference truncated');
    if (len === 7) {
      len += input[ip++] as number;
      if (ip >= input.length) throw new RdbFormatError('LZF back reference truncated');
    }
    let ref = op - ((ctrl & 0x1f) << 8) - 1 - (input[ip++] as number);
    len += 2;
    if (ref < 0) throw new RdbFormatError('LZF back reference before the start of the output');
    if (op + len > outputLength) throw new RdbFormatError('LZF output longer than announced');
    for (let end = op + len; op < end;) out[op++] = out[ref++] as number;
  }
  if (op !== outputLength) throw new RdbFormatError(`LZF output is ${op} bytes, ${outputLength} announced`);
  return out;
}
