/**
 * CRC-64/Jones (reflected, polynomial 0xad93d23594c935a9, init 0, no final xor): the checksum
 * Redis appends to RDB files and DUMP payloads. Kept as two 32-bit halves so the hot loop
 * avoids BigInt; one 256-entry table per half.
 */
const POLY_HI = 0x95ac9329;
const POLY_LO = 0xac4bc9b5; // reflected 0xad93d23594c935a9 = 0x95ac9329ac4bc9b5

const TABLE_HI = new Uint32Array(256);
const TABLE_LO = new Uint32Array(256);
for (let n = 0; n < 256; n++) {
  let hi = 0;
  let lo = n;
  for (let k = 0; k < 8; k++) {
    const carry = lo & 1;
    lo = ((lo >>> 1) | ((hi & 1) << 31)) >>> 0;
    hi = hi >>> 1;
    if (carry) {
      hi = (hi ^ POLY_HI) >>> 0;
      lo = (lo ^ POLY_LO) >>> 0;
    }
  }
  TABLE_HI[n] = hi;
  TABLE_LO[n] = lo;
}

export class Crc64 {
  private hi = 0;
  private lo = 0;

  update(bytes: Uint8Array): void {
    let hi = this.hi;
    let lo = this.lo;
    for (const byte of bytes) {
      const idx = (lo ^ byte) & 0xff;
      lo = (((lo >>> 8) | ((hi & 0xff) << 24)) ^ (TABLE_LO[idx] as number)) >>> 0;
      hi = ((hi >>> 8) ^ (TABLE_HI[idx] as number)) >>> 0;
    }
    this.hi = hi;
    this.lo = lo;
  }

  /** The checksum as Redis writes it: 8 bytes, little-endian. */
  digest(): Buffer {
    const out = Buffer.alloc(8);
    out.writeUInt32LE(this.lo, 0);
    out.writeUInt32LE(this.hi, 4);
    return out;
  }

  value(): bigint {
    return (BigInt(this.hi) << 32n) | BigInt(this.lo);
  }
}

export function crc64(bytes: Uint8Array): bigint {
  const c = new Crc64();
  c.update(bytes);
  return c.value();
}
