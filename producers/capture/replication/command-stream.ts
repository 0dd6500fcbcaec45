import type { ByteReader } from './rdb';
import { SyncError } from '../../../shared/platform/errors';

/** The command stream after the snapshot is not what the replication protocol sends. */
export class ReplicationStreamError extends SyncError {
  override readonly name = 'ReplicationStreamError';
  readonly code = 'REPLICATION_STREAM';
}

const MAX_ARGS = 1024 * 1024;
const MAX_BULK = 512 * 1024 * 1024;

/**
 * Reads one command of the replication stream: a RESP array of bulk strings, exactly as the
 * master executed (or rewrote) it. The caller measures its size in bytes through
 * `reader.consumed`, which is how replication offsets advance.
 */
export async function readCommand(reader: ByteReader): Promise<Buffer[]> {
  const head = (await reader.line()).toString('latin1');
  if (!head.startsWith('*'))
    throw new ReplicationStreamError(
      `expected a command array in the replication stream, found ${JSON.stringify(head.slice(0, 40))}`,
    );
  const n = Number(head.slice(1));
  if (!Number.isInteger(n) || n < 0 || n > MAX_ARGS)
    throw new ReplicationStreamError(`bad command array length ${JSON.stringify(head)}`);
  const args: Buffer[] = [];
  for (let i = 0; i < n; i++) {
    const bulk = (await reader.line()).toString('latin1');
    if (!bulk.startsWith('$'))
      throw new ReplicationStreamError(
        `expected a bulk string in the replication stream, found ${JSON.stringify(bulk.slice(0, 40))}`,
      );
    const len = Number(bulk.slice(1));
    if (!Number.isInteger(len) || len < 0 || len > MAX_BULK)
      throw new ReplicationStreamError(`bad bulk length ${JSON.stringify(bulk)}`);
    const data = await reader.bytes(len + 2);
    if (data[len] !== 0x0d || data[len + 1] !== 0x0a)
      throw new ReplicationStreamError('bulk string not followed by CRLF');
    args.push(Buffer.from(data.subarray(0, len)));
  }
  return args;
}
