import { RdbFormatError } from './errors';

/**
 * One element of a packed encoding (listpack, ziplist, intset, zipmap): raw bytes, or an integer
 * the encoding stored as such. 64-bit integers outside the safe range stay bigint.
 */
export type PackedValue = Buffer | number | bigint;

export function packedToString(v: PackedValue): string {
  return Buffer.isBuffer(v) ? v.toString('utf8') : String(v);
}

export function packedToBigInt(v: PackedValue): bigint {
  if (Buffer.isBuffer(v)) {
    const s = v.toString('latin1');
    if (!/^-?\d+$/.test(s)) throw new RdbFormatError(`expected an integer, found ${JSON.stringify(s)}`);
    return BigInt(s);
  }
  return BigInt(v);
}

export function packedToNumber(v: PackedValue): number {
  return Buffer.isBuffer(v) ? parseRedisDouble(v.toString('latin1')) : Number(v);
}

/** Doubles as Redis prints them: decimal or exponent notation, and "inf"/"-inf" for infinities. */
export function parseRedisDouble(s: string): number {
  const lower = s.toLowerCase();
  if (lower === 'inf' || lower === '+inf' || lower === 'infinity' || lower === '+infinity') return Infinity;
  if (lower === '-inf' || lower === '-infinity') return -Infinity;
  const n = Number(s);
  if (Number.isNaN(n) && lower !== 'nan') throw new RdbFormatError(`expected a number, found ${JSON.stringify(s)}`);
  return n;
}

function int64(buf: Buffer, at: number): number | bigint {
  const v = buf.readBigInt64LE(at);
  return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
}

function need(buf: Buffer, at: number, n: number, what: string): void {
  if (at + n > buf.length) throw new RdbFormatError(`${what} entry runs past the end of its blob`);
}

/** Size in bytes of the backward length that closes a listpack entry whose body is `len` bytes. */
function listpackBacklenSize(len: number): number {
  if (len < 128) return 1;
  if (len < 16384) return 2;
  if (len < 2097152) return 3;
  if (len < 268435456) return 4;
  return 5;
}

/**
 * Listpack: 4-byte total size, 2-byte element count, entries, 0xFF. Each entry is an encoding
 * byte (small uint, 6/12/32-bit string length, 13/16/24/32/64-bit signed int), its data, and a
 * backward length we only need to skip.
 */
export function decodeListpack(buf: Buffer): PackedValue[] {
  if (buf.length < 7) throw new RdbFormatError('listpack shorter than its header');
  const total = buf.readUInt32LE(0);
  if (total !== buf.length) throw new RdbFormatError(`listpack says ${total} bytes, blob has ${buf.length}`);
  const out: PackedValue[] = [];
  let p = 6;
  for (;;) {
    need(buf, p, 1, 'listpack');
    const b = buf[p] as number;
    if (b === 0xff) break;
    let value: PackedValue;
    let body: number;
    if ((b & 0x80) === 0) {
      value = b & 0x7f;
      body = 1;
    } else if ((b & 0xc0) === 0x80) {
      const len = b & 0x3f;
      need(buf, p, 1 + len, 'listpack');
      value = buf.subarray(p + 1, p + 1 + len);
      body = 1 + len;
    } else if ((b & 0xe0) === 0xc0) {
      need(buf, p, 2, 'listpack');
      const u = ((b & 0x1f) << 8) | (buf[p + 1] as number);
      value = u >= 1 << 12 ? u - (1 << 13) : u;
      body = 2;
    } else if ((b & 0xf0) === 0xe0) {
      need(buf, p, 2, 'listpack');
      const len = ((b & 0x0f) << 8) | (buf[p + 1] as number);
      need(buf, p, 2 + len, 'listpack');
      value = buf.subarray(p + 2, p + 2 + len);
      body = 2 + len;
    } else {
      switch (b) {
        case 0xf0: {
          need(buf, p, 5, 'listpack');
          const len = buf.readUInt32LE(p + 1);
          need(buf, p, 5 + len, 'listpack');
          value = buf.subarray(p + 5, p + 5 + len);
          body = 5 + len;
          break;
        }
        case 0xf1:
          need(buf, p, 3, 'listpack');
          value = buf.readInt16LE(p + 1);
          body = 3;
          break;
        case 0xf2:
          need(buf, p, 4, 'listpack');
          value = buf.readIntLE(p + 1, 3);
          body = 4;
          break;
        case 0xf3:
          need(buf, p, 5, 'listpack');
          value = buf.readInt32LE(p + 1);
          body = 5;
          break;
        case 0xf4:
          need(buf, p, 9, 'listpack');
          value = int64(buf, p + 1);
          body = 9;
          break;
        default:
          throw new RdbFormatError(`unknown listpack encoding byte 0x${b.toString(16)}`);
      }
    }
    out.push(value);
    p += body + listpackBacklenSize(body);
  }
  return out;
}

/**
 * Ziplist (RDB before v10): 4-byte total size, 4-byte tail offset, 2-byte count, entries, 0xFF.
 * Each entry: previous entry length (1 byte, or 0xFE + 4 bytes), an encoding header (string of
 * 6/14/32-bit length, or int8/16/24/32/64, or an immediate 0..12), then the data.
 */
export function decodeZiplist(buf: Buffer): PackedValue[] {
  if (buf.length < 11) throw new RdbFormatError('ziplist shorter than its header');
  const total = buf.readUInt32LE(0);
  if (total !== buf.length) throw new RdbFormatError(`ziplist says ${total} bytes, blob has ${buf.length}`);
  const out: PackedValue[] = [];
  let p = 10;
  for (;;) {
    need(buf, p, 1, 'ziplist');
    if (buf[p] === 0xff) break;
    p += buf[p] === 0xfe ? 5 : 1;
    need(buf, p, 1, 'ziplist');
    const b = buf[p] as number;
    switch (b >> 6) {
      case 0: {
        const len = b & 0x3f;
        need(buf, p, 1 + len, 'ziplist');
        out.push(buf.subarray(p + 1, p + 1 + len));
        p += 1 + len;
        continue;
      }
      case 1: {
        need(buf, p, 2, 'ziplist');
        const len = ((b & 0x3f) << 8) | (buf[p + 1] as number);
        need(buf, p, 2 + len, 'ziplist');
        out.push(buf.subarray(p + 2, p + 2 + len));
        p += 2 + len;
        continue;
      }
      case 2: {
        need(buf, p, 5, 'ziplist');
        const len = buf.readUInt32BE(p + 1);
        need(buf, p, 5 + len, 'ziplist');
        out.push(buf.subarray(p + 5, p + 5 + len));
        p += 5 + len;
        continue;
      }
    }
    switch (b) {
      case 0xc0:
        need(buf, p, 3, 'ziplist');
        out.push(buf.readInt16LE(p + 1));
        p += 3;
        break;
      case 0xd0:
        need(buf, p, 5, 'ziplist');
        out.push(buf.readInt32LE(p + 1));
        p += 5;
        break;
      case 0xe0:
        need(buf, p, 9, 'ziplist');
        out.push(int64(buf, p + 1));
        p += 9;
        break;
      case 0xf0:
        need(buf, p, 4, 'ziplist');
        out.push(buf.readIntLE(p + 1, 3));
        p += 4;
        break;
      case 0xfe:
        need(buf, p, 2, 'ziplist');
        out.push(buf.readInt8(p + 1));
        p += 2;
        break;
      default:
        if (b >= 0xf1 && b <= 0xfd) {
          out.push((b & 0x0f) - 1);
          p += 1;
          break;
        }
        throw new RdbFormatError(`unknown ziplist encoding byte 0x${b.toString(16)}`);
    }
  }
  return out;
}

/** Intset: 4-byte element width (2, 4 or 8), 4-byte count, then sorted little-endian integers. */
export function decodeIntset(buf: Buffer): PackedValue[] {
  if (buf.length < 8) throw new RdbFormatError('intset shorter than its header');
  const width = buf.readUInt32LE(0);
  const count = buf.readUInt32LE(4);
  if (width !== 2 && width !== 4 && width !== 8) throw new RdbFormatError(`intset element width ${width}`);
  if (8 + width * count !== buf.length) throw new RdbFormatError('intset size does not match its count');
  const out: PackedValue[] = [];
  for (let i = 0, p = 8; i < count; i++, p += width) {
    out.push(width === 2 ? buf.readInt16LE(p) : width === 4 ? buf.readInt32LE(p) : int64(buf, p));
  }
  return out;
}

/**
 * Zipmap (hashes from Redis before 2.6): 1-byte count, then per pair a key length, the key, a
 * value length, one "free" byte, the value and that many unused bytes; 0xFF ends it. Lengths are
 * one byte, or 0xFE followed by 4 bytes.
 */
export function decodeZipmap(buf: Buffer): PackedValue[] {
  const out: PackedValue[] = [];
  let p = 1;
  const length = (): number => {
    need(buf, p, 1, 'zipmap');
    const b = buf[p] as number;
    if (b < 254) {
      p += 1;
      return b;
    }
    if (b === 254) {
      need(buf, p, 5, 'zipmap');
      const len = buf.readUInt32LE(p + 1);
      p += 5;
      return len;
    }
    throw new RdbFormatError('zipmap length byte 0xff inside an entry');
  };
  for (;;) {
    need(buf, p, 1, 'zipmap');
    if (buf[p] === 0xff) break;
    const klen = length();
    need(buf, p, klen, 'zipmap');
    out.push(buf.subarray(p, p + klen));
    p += klen;
    const vlen = length();
    need(buf, p, 1, 'zipmap');
    const free = buf[p] as number;
    p += 1;
    need(buf, p, vlen + free, 'zipmap');
    out.push(buf.subarray(p, p + vlen));
    p += vlen + free;
  }
  return out;
}
