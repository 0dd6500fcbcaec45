import { ByteReader, chunksOfBuffer } from './byte-reader';
import { crc64 } from './crc64';
import { RdbFormatError } from './errors';
import { MAX_RDB_VERSION } from './rdb-stream';
import type { DecodedValue } from './types';
import { readValue } from './values';

export interface DumpPayload {
  /** RDB version of the server that produced the payload. */
  rdbVersion: number;
  value: DecodedValue;
}

/**
 * Decodes a DUMP payload (what DUMP returns and RESTORE takes): the value's RDB type byte, the
 * value as in an RDB, the 2-byte RDB version and a CRC-64 of everything before it.
 */
export async function decodeDumpPayload(payload: Buffer, nowMs: number = Date.now()): Promise<DumpPayload> {
  if (payload.length < 11) throw new RdbFormatError('DUMP payload shorter than its footer');
  const bodyEnd = payload.length - 10;
  const rdbVersion = payload.readUInt16LE(bodyEnd);
  const stored = payload.readBigUInt64LE(bodyEnd + 2);
  if (stored !== 0n && stored !== crc64(payload.subarray(0, bodyEnd + 2))) {
    throw new RdbFormatError('DUMP payload checksum mismatch');
  }
  if (rdbVersion > MAX_RDB_VERSION) {
    throw new RdbFormatError(
      `DUMP payload of RDB version ${rdbVersion} is not supported (this decoder knows up to ${MAX_RDB_VERSION})`,
    );
  }
  const r = new ByteReader(chunksOfBuffer(payload.subarray(0, bodyEnd)));
  const value = await readValue(r, await r.u8(), { nowMs });
  if (!(await r.atEnd())) throw new RdbFormatError('DUMP payload has bytes after its value');
  return { rdbVersion, value };
}
