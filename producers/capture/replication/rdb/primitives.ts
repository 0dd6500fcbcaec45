import type { ByteReader } from './byte-reader';
import { RdbFormatError } from './errors';
import { lzfDecompress } from './lzf';
import { parseRedisDouble } from './packed';

const ENC_INT8 = 0;
const ENC_INT16 = 1;
const ENC_INT32 = 2;
const ENC_LZF = 3;

type LengthHeader = { encoded: false; length: bigint } | { encoded: true; encoding: number };

/**
 * The RDB length prefix: the top two bits of the first byte pick 6-bit, 14-bit (big-endian) or
 * 32/64-bit (big-endian, marker 0x80/0x81) lengths; 0b11 marks a specially encoded string.
 */
async function readLengthHeader(r: ByteReader): Promise<LengthHeader> {
  const b = await r.u8();
  switch (b >> 6) {
    case 0:
      return { encoded: false, length: BigInt(b & 0x3f) };
    case 1:
      return { encoded: false, length: BigInt(((b & 0x3f) << 8) | (await r.u8())) };
    case 2:
      if (b === 0x80) return { encoded: false, length: BigInt((await r.bytes(4)).readUInt32BE(0)) };
      if (b === 0x81) return { encoded: false, length: (await r.bytes(8)).readBigUInt64BE(0) };
      throw new RdbFormatError(`unknown length marker 0x${b.toString(16)}`);
    default:
      return { encoded: true, encoding: b & 0x3f };
  }
}

/** A length that also serves as a 64-bit unsigned number (stream IDs, module ids). */
export async function readLengthBig(r: ByteReader): Promise<bigint> {
  const h = await readLengthHeader(r);
  if (h.encoded) throw new RdbFormatError('expected a length, found an encoded string marker');
  return h.length;
}

export async function readLength(r: ByteReader): Promise<number> {
  const n = await readLengthBig(r);
  if (n > BigInt(Number.MAX_SAFE_INTEGER)) throw new RdbFormatError(`length ${n} is too large`);
  return Number(n);
}

/** A string: raw bytes, an integer stored in 1/2/4 bytes (returned as its decimal text), or LZF-compressed bytes. */
export async function readString(r: ByteReader): Promise<Buffer> {
  const h = await readLengthHeader(r);
  if (!h.encoded) {
    if (h.length > BigInt(Number.MAX_SAFE_INTEGER)) throw new RdbFormatError(`string length ${h.length} is too large`);
    return Buffer.from(await r.bytes(Number(h.length)));
  }
  switch (h.encoding) {
    case ENC_INT8:
      return Buffer.from(String((await r.bytes(1)).readInt8(0)));
    case ENC_INT16:
      return Buffer.from(String((await r.bytes(2)).readInt16LE(0)));
    case ENC_INT32:
      return Buffer.from(String((await r.bytes(4)).readInt32LE(0)));
    case ENC_LZF: {
      const compressed = await readLength(r);
      const length = await readLength(r);
      return lzfDecompress(await r.bytes(compressed), length);
    }
    default:
      throw new RdbFormatError(`unknown string encoding ${h.encoding}`);
  }
}

/** Moves past a string without building it (compressed ones stay compressed). */
export async function skipString(r: ByteReader): Promise<void> {
  const h = await readLengthHeader(r);
  if (!h.encoded) {
    await r.skip(h.length);
    return;
  }
  switch (h.encoding) {
    case ENC_INT8:
      await r.skip(1n);
      return;
    case ENC_INT16:
      await r.skip(2n);
      return;
    case ENC_INT32:
      await r.skip(4n);
      return;
    case ENC_LZF: {
      const compressed = await readLengthBig(r);
      await readLengthBig(r);
      await r.skip(compressed);
      return;
    }
    default:
      throw new RdbFormatError(`unknown string encoding ${h.encoding}`);
  }
}

/** Score of the old zset type: a length byte then ASCII; 253/254/255 stand for NaN/+inf/-inf. */
export async function readAsciiDouble(r: ByteReader): Promise<number> {
  const len = await r.u8();
  if (len === 253) return NaN;
  if (len === 254) return Infinity;
  if (len === 255) return -Infinity;
  return parseRedisDouble((await r.bytes(len)).toString('latin1'));
}

export async function readBinaryDouble(r: ByteReader): Promise<number> {
  return (await r.bytes(8)).readDoubleLE(0);
}

/** Milliseconds since the epoch, 8 bytes little-endian. */
export async function readMillisecondTime(r: ByteReader): Promise<number> {
  return Number((await r.bytes(8)).readBigInt64LE(0));
}

export async function readSecondTime(r: ByteReader): Promise<number> {
  return (await r.bytes(4)).readInt32LE(0) * 1000;
}
