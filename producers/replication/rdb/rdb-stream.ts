import type { Logger } from '../../../shared/logger';
import type { ByteReader } from './byte-reader';
import { RdbFormatError } from './errors';
import { readLength, readLengthBig, readMillisecondTime, readSecondTime, readString } from './primitives';
import type { RdbKeyRecord, RdbRecord } from './types';
import { isValueType, moduleIdName, readValue, skipModuleOpcodes } from './values';

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

/**
 * Decodes an RDB stream record by record, pulling bytes only as needed, and stops right after
 * the trailing checksum (which it verifies unless the server wrote zeros, i.e. `rdbchecksum no`).
 * Bytes after the RDB stay in the reader. Module values are skipped with a warning and still
 * yielded, as type 'module', because their key exists.
 */
export async function* readRdb(r: ByteReader, opts: ReadRdbOptions = {}): AsyncGenerator<RdbRecord, void, undefined> {
  const header = (await r.bytes(9)).toString('latin1');
  if (!header.startsWith('REDIS') || !/^\d{4}$/.test(header.slice(5))) {
    throw new RdbFormatError(`not an RDB stream (header ${JSON.stringify(header)})`);
  }
  const version = Number(header.slice(5));
  if (version < 1 || version > MAX_RDB_VERSION) {
    throw new RdbFormatError(`RDB version ${version} is not supported (this decoder knows 1 to ${MAX_RDB_VERSION})`);
  }
  const nowMs = opts.nowMs ?? Date.now();
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
        throw new RdbFormatError('function library in the Redis 7.0 release-candidate format, which Redis itself no longer loads');
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
        const key = (await readString(r)).toString('utf8');
        const value = await readValue(r, op, { nowMs });
        if (value.type === 'module') {
          opts.logger?.warn({ db, key, module: value.moduleName }, 'skipped a module value in the RDB: its content cannot be decoded');
        }
        const record: RdbKeyRecord = { kind: 'key', db, key, ...value };
        if (expireAtMs !== undefined) record.expireAtMs = expireAtMs;
        expireAtMs = undefined;
        yield record;
      }
    }
  }
}

async function verifyChecksum(r: ByteReader): Promise<void> {
  const computed = r.checksum();
  const stored = await r.bytesUnchecksummed(8);
  if (stored.every((b) => b === 0)) return;
  if (!stored.equals(computed)) {
    throw new RdbFormatError(`RDB checksum mismatch: stored ${stored.toString('hex')}, computed ${computed.toString('hex')}`);
  }
}
