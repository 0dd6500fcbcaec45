import { Crc64 } from './crc64';
import { RdbFormatError } from './errors';

/** Hands out the next chunk of the stream, or null at its end. */
export type ChunkSource = () => Promise<Buffer | null>;

/** A chunk source over any async iterable of buffers (a socket, a file read stream). */
export function chunksOf(iterable: AsyncIterable<Buffer>): ChunkSource {
  const it = iterable[Symbol.asyncIterator]();
  return async () => {
    const r = await it.next();
    return r.done === true ? null : r.value;
  };
}

/** A chunk source over one buffer already in memory (a DUMP payload, a test fixture). */
export function chunksOfBuffer(buffer: Buffer): ChunkSource {
  let given = false;
  return () => {
    if (given) return Promise.resolve(null);
    given = true;
    return Promise.resolve(buffer);
  };
}

/**
 * Pulls bytes from a stream only as the decoder needs them, so a large RDB never sits in memory
 * whole; keeps a running CRC-64 of everything consumed (the RDB trailer checks it) and the count
 * of bytes consumed. Whatever was pulled but not consumed stays available (`takeBuffered`) for
 * the protocol that follows the RDB on the same socket.
 */
export class ByteReader {
  private buf: Buffer = Buffer.alloc(0);
  private pos = 0;
  private crc = new Crc64();
  private checksumming = true;
  consumed = 0;

  constructor(private readonly source: ChunkSource) {}

  async u8(): Promise<number> {
    await this.fill(1);
    const b = this.buf[this.pos] as number;
    this.advance(1);
    return b;
  }

  /** The next n bytes. The result may share memory with the reader's buffer; copy it to keep it. */
  async bytes(n: number): Promise<Buffer> {
    await this.fill(n);
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.advance(n);
    return out;
  }

  /** Moves past n bytes, a chunk at a time, so a large value never needs one buffer. */
  async skip(n: bigint): Promise<void> {
    let left = n;
    while (left > 0n) {
      if (this.pos >= this.buf.length) await this.fill(1);
      const step = Math.min(this.buf.length - this.pos, Number(left > 0x40000000n ? 0x40000000n : left));
      this.advance(step);
      left -= BigInt(step);
    }
  }

  /** Reads bytes that the running checksum must not cover (the checksum itself). */
  async bytesUnchecksummed(n: number): Promise<Buffer> {
    const was = this.checksumming;
    this.checksumming = false;
    try {
      return await this.bytes(n);
    } finally {
      this.checksumming = was;
    }
  }

  checksum(): Buffer {
    return this.crc.digest();
  }

  /** Starts the running checksum afresh: an RDB's checksum covers the RDB only, not what preceded it on the socket. */
  startChecksum(): void {
    this.crc = new Crc64();
    this.checksumming = true;
  }

  /** Stops the running checksum (the replication stream after an RDB has none). */
  stopChecksum(): void {
    this.checksumming = false;
  }

  /**
   * The next line without its terminator (CRLF, or a bare LF as the keep-alive newlines a
   * master sends before an RDB). Fails past `maxBytes`, so a peer cannot grow it unbounded.
   */
  async line(maxBytes = 64 * 1024): Promise<Buffer> {
    let from = this.pos;
    for (;;) {
      const nl = this.buf.indexOf(0x0a, from);
      if (nl >= 0) {
        const end = nl > this.pos && this.buf[nl - 1] === 0x0d ? nl - 1 : nl;
        const out = this.buf.subarray(this.pos, end);
        this.advance(nl + 1 - this.pos);
        return out;
      }
      if (this.buf.length - this.pos > maxBytes) throw new RdbFormatError(`line longer than ${maxBytes} bytes`);
      from = this.buf.length;
      const before = this.pos;
      await this.fill(this.buf.length - this.pos + 1);
      from -= before - this.pos;
    }
  }

  /** Bytes pulled from the source but not consumed; the reader gives them up. */
  takeBuffered(): Buffer {
    const rest = this.buf.subarray(this.pos);
    this.buf = Buffer.alloc(0);
    this.pos = 0;
    return rest;
  }

  /** True when the source is exhausted and nothing is buffered. */
  async atEnd(): Promise<boolean> {
    if (this.pos < this.buf.length) return false;
    for (;;) {
      const chunk = await this.source();
      if (chunk === null) return true;
      if (chunk.length > 0) {
        this.buf = chunk;
        this.pos = 0;
        return false;
      }
    }
  }

  private advance(n: number): void {
    if (this.checksumming) this.crc.update(this.buf.subarray(this.pos, this.pos + n));
    this.pos += n;
    this.consumed += n;
  }

  private async fill(n: number): Promise<void> {
    const have = this.buf.length - this.pos;
    if (have >= n) return;
    // Collect first and concatenate once: a large string spread over many chunks costs one copy.
    const parts = [this.buf.subarray(this.pos)];
    let total = have;
    while (total < n) {
      const chunk = await this.source();
      if (chunk === null)
        throw new RdbFormatError(`stream ended ${n - total} bytes short (after ${this.consumed} bytes)`);
      parts.push(chunk);
      total += chunk.length;
    }
    this.buf = Buffer.concat(parts, total);
    this.pos = 0;
  }
}
