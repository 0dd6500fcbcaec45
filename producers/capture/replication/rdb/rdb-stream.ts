import { keyFromBytes } from '../../../../shared/core/bytes';
import type { Logger } from '../../../../shared/platform/logger';
import type { ByteReader } from './byte-reader';
import { RdbFormatError } from './errors';
import { readLength, readLengthBig, readMillisecondTime, readSecondTime, readString } from './primitives';
import type { RdbKeyRecord, RdbKeyRef, RdbMetaRecord, RdbRecord } from './types';
import { isValueType, moduleIdName, RDB_TYPE, readValue, skipModuleOpcodes, skipValue } from './values';

const OPCODE = {
  SLOT_INFO: 244,
  FUNCTION2: 245,
  FUNCTION_PRE_GA: 246,
  MODULE_AUX: 247,
  IDLE: 248,
  FREQ: 249,
  AUX: 250,
  RESIZEDB: 251,
  EXPIRETIME_MS: 252,
  EXPIRETIME: 253,
  SELECTDB: 254,
  EOF: 255,
} as const;

/** Highest RDB version whose format this decoder knows (Redis 7.4). */
export const MAX_RDB_VERSION = 12;

export interface ReadRdbOptions {
  logger?: Logger;
  /** Reference time for dropping hash fields whose own TTL ended; defaults to now. */
  nowMs?: number;
}

interface KeyHeader {
  db: number;
  key: string;
  rdbType: number;
  expireAtMs: number | undefined;
}

/**
 * Decodes an RDB stream record by record, pulling bytes only as needed, and stops right after
 * the trailing checksum (which it verifies unless the server wrote zeros, i.e. `rdbchecksum no`).
 * Bytes after the RDB stay in the reader. Module values are skipped with a warning and still
 * yielded, as type 'module', because their key exists.
 */
export function readRdb(r: ByteReader, opts: ReadRdbOptions = {}): AsyncGenerator<RdbRecord, void, undefined> {
  const nowMs = opts.nowMs ?? Date.now();
  return records(r, opts, async (h): Promise<RdbKeyRecord> => {
    const value = await readValue(r, h.rdbType, { nowMs });
    if (value.type === 'module') {
      opts.logger?.warn(
        { db: h.db, key: h.key, module: value.moduleName },
        'skipped a module value in the RDB: its content cannot be decoded',
      );
    }
    const record: RdbKeyRecord = { kind: 'key', db: h.db, key: h.key, ...value };
    if (h.expireAtMs !== undefined) record.expireAtMs = h.expireAtMs;
    return record;
  });
}

/**
 * Like readRdb, but yields each key's name, type and expiry without decoding its value (still
 * read, to move past it, but lists, listpacks and compressed strings are not expanded): what a
 * snapshot needs when jobs carry keys, never values.
 */
export function readRdbKeys(
  r: ByteReader,
  opts: Omit<ReadRdbOptions, 'nowMs'> = {},
): AsyncGenerator<RdbKeyRef | RdbMetaRecord, void, undefined> {
  return records(r, opts, async (h): Promise<RdbKeyRef> => {
    await skipValue(r, h.rdbType);
    if (h.rdbType === RDB_TYPE.MODULE_2)
      opts.logger?.warn({ db: h.db, key: h.key }, 'skipped a module value in the RDB: its content cannot be decoded');
    const ref: RdbKeyRef = { kind: 'key', db: h.db, key: h.key, rdbType: h.rdbType };
    if (h.expireAtMs !== undefined) ref.expireAtMs = h.expireAtMs;
    return ref;
  });
}

async function* records<K>(
  r: ByteReader,
  opts: Omit<ReadRdbOptions, 'nowMs'>,
  onKey: (h: KeyHeader) => Promise<K>,
): AsyncGenerator<K | RdbMetaRecord, void, undefined> {
  r.startChecksum();
  const header = (await r.bytes(9)).toString('latin1');
  if (!header.startsWith('REDIS') || !/^\d{4}$/.test(header.slice(5))) {
    throw new RdbFormatError(`not an RDB stream (header ${JSON.stringify(header)})`);
  }
  const version = Number(header.slice(5));
  if (version < 1 || version > MAX_RDB_VERSION) {
    throw new RdbFormatError(`RDB version ${version} is not supported (this decoder knows 1 to ${MAX_RDB_VERSION})`);
  }
  let db = 0;
  let expireAtMs: number | undefined;
  for (;;) {
    const op = await r.u8();
    switch (op) {
      case OPCODE.EOF: {
        if (version >= 5) await verifyChecksum(r);
        return;
      }
      case OPCODE.SELECTDB:
        db = await readLength(r);
        continue;
      case OPCODE.RESIZEDB: {
        const keys = await readLength(r);
        const expires = await readLength(r);
        yield { kind: 'resizedb', db, keys, expires };
        continue;
      }
      case OPCODE.AUX: {
        const name = (await readString(r)).toString('utf8');
        const value = (await readString(r)).toString('utf8');
        yield { kind: 'aux', name, value };
        continue;
      }
      case OPCODE.EXPIRETIME_MS:
        expireAtMs = await readMillisecondTime(r);
        continue;
      case OPCODE.EXPIRETIME:
        expireAtMs = await readSecondTime(r);
        continue;
      case OPCODE.IDLE:
        await readLengthBig(r);
        continue;
      case OPCODE.FREQ:
        await r.u8();
        continue;
      case OPCODE.SLOT_INFO:
        // Slot id, keys in the slot, expiring keys in the slot: sizing hints for cluster nodes.
        await readLengthBig(r);
        await readLengthBig(r);
        await readLengthBig(r);
        continue;
      case OPCODE.FUNCTION2:
        yield { kind: 'function', code: (await readString(r)).toString('utf8') };
        continue;
      case OPCODE.FUNCTION_PRE_GA:
        throw new RdbFormatError(
          'function library in the Redis 7.0 release-candidate format, which Redis itself no longer loads',
        );
      case OPCODE.MODULE_AUX: {
        const { moduleName } = moduleIdName(await readLengthBig(r));
        await readLengthBig(r); // opcode marker (always UINT)
        await readLengthBig(r); // when (before or after the keyspace)
        await skipModuleOpcodes(r);
        opts.logger?.warn({ module: moduleName }, 'skipped module auxiliary data in the RDB');
        continue;
      }
      default: {
        if (!isValueType(op)) throw new RdbFormatError(`unknown RDB opcode ${op} after ${r.consumed} bytes`);
        const key = keyFromBytes(await readString(r));
        const header: KeyHeader = { db, key, rdbType: op, expireAtMs };
        expireAtMs = undefined;
        yield await onKey(header);
      }
    }
  }
}

async function verifyChecksum(r: ByteReader): Promise<void> {
  const computed = r.checksum();
  const stored = await r.bytesUnchecksummed(8);
  if (stored.every((b) => b === 0)) return;
  if (!stored.equals(computed)) {
    throw new RdbFormatError(
      `RDB checksum mismatch: stored ${stored.toString('hex')}, computed ${computed.toString('hex')}`,
    );
  }
}
