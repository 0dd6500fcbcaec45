import { connect as connectTcp, type Socket } from 'node:net';
import { connect as connectTls } from 'node:tls';
import { RedisSetupError } from '../../../shared/platform/errors';
import { ByteReader, chunksOf } from './rdb';

/** Where a replication session starts: the master's history id and the last byte already applied. */
export interface ReplicationPosition {
  replid: string;
  /** Offset of the last byte of the replication stream already applied (PSYNC asks for offset + 1). */
  offset: number;
}

export type PsyncOutcome =
  /** The master sends an RDB snapshot of `position`, then the stream from there. */
  | { kind: 'full'; position: ReplicationPosition }
  /** The master continues the stream right after the requested offset (its id may have changed). */
  | { kind: 'continue'; replid: string };

const NOTIFICATIONS_HINT =
  'The replication producer needs a self-hosted Redis or Valkey that lets this user act as a replica ' +
  '(ACL: +psync +replconf +ping). Use producer.mode: notifications where that is not possible (managed clouds).';

/**
 * One replication connection to the master: a raw socket that speaks the replica side of the
 * protocol. Replies and the stream are read through one ByteReader; writes are the few
 * commands a replica sends (handshake, REPLCONF ACK).
 */
export class ReplicaLink {
  readonly reader: ByteReader;
  private closed = false;

  private constructor(private readonly socket: Socket) {
    this.reader = new ByteReader(chunksOf(socket));
  }

  static async open(url: string, timeoutMs: number): Promise<ReplicaLink> {
    const u = new URL(url);
    const host = u.hostname.replace(/^\[|\]$/g, '');
    const port = Number(u.port || 6379);
    const socket = await new Promise<Socket>((resolve, reject) => {
      const s: Socket =
        u.protocol === 'rediss:' ? connectTls({ host, port, servername: host }) : connectTcp({ host, port });
      const timer = setTimeout(() => {
        s.destroy();
        reject(new Error(`connecting to ${host}:${port} timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      s.once(u.protocol === 'rediss:' ? 'secureConnect' : 'connect', () => {
        clearTimeout(timer);
        s.off('error', reject);
        resolve(s);
      });
      s.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 10_000);
    // The async iterator rethrows socket errors to the reader; this only keeps an error
    // raised between reads from becoming an unhandled 'error' event.
    socket.on('error', () => undefined);
    const link = new ReplicaLink(socket);
    try {
      if (u.password !== '') {
        const user = decodeURIComponent(u.username);
        const password = decodeURIComponent(u.password);
        const reply = await link.call(user !== '' ? ['AUTH', user, password] : ['AUTH', password]);
        if (reply.startsWith('-')) throw new RedisSetupError(`the source Redis refused AUTH: ${reply.slice(1)}`);
      }
      await link.expectOk(['PING'], 'PING', /^\+PONG/);
    } catch (err) {
      link.close();
      throw err;
    }
    return link;
  }

  /** REPLCONF announcing what we understand, then PSYNC. */
  async psync(from: ReplicationPosition | undefined): Promise<PsyncOutcome> {
    // No replica listens on this side; port 0 tells the master (and INFO readers) as much.
    await this.expectOk(['REPLCONF', 'listening-port', '0'], 'REPLCONF listening-port');
    await this.expectOk(['REPLCONF', 'capa', 'eof', 'capa', 'psync2'], 'REPLCONF capa');
    const reply = await this.call(from ? ['PSYNC', from.replid, String(from.offset + 1)] : ['PSYNC', '?', '-1']);
    const full = /^\+FULLRESYNC ([0-9a-f]{40}) (\d+)$/i.exec(reply);
    if (full) return { kind: 'full', position: { replid: full[1] as string, offset: Number(full[2]) } };
    const cont = /^\+CONTINUE(?: ([0-9a-f]{40}))?$/i.exec(reply);
    if (cont) {
      if (from === undefined) throw new Error('the master answered CONTINUE to a request for a full resynchronization');
      return { kind: 'continue', replid: cont[1] ?? from.replid };
    }
    if (/^-(LOADING|NOMASTERLINK|MASTERDOWN)/.test(reply))
      throw new Error(`the master cannot serve replicas right now: ${reply.slice(1)}`);
    throw new RedisSetupError(`the source Redis refused PSYNC: ${reply.replace(/^-/, '')}. ${NOTIFICATIONS_HINT}`);
  }

  /**
   * After +FULLRESYNC: skips the keep-alive newlines and reads the transfer header, either
   * `$<length>` (an RDB file) or `$EOF:<40-byte marker>` (diskless: the RDB ends with the marker).
   */
  async rdbHeader(): Promise<{ length: number } | { eofMarker: Buffer }> {
    for (;;) {
      const line = (await this.reader.line()).toString('latin1');
      if (line === '') continue;
      if (line.startsWith('-')) throw new Error(`the master failed to send its snapshot: ${line.slice(1)}`);
      const eof = /^\$EOF:(.{40})$/.exec(line);
      if (eof) return { eofMarker: Buffer.from(eof[1] as string, 'latin1') };
      const len = /^\$(\d+)$/.exec(line);
      if (len) return { length: Number(len[1]) };
      throw new Error(
        `unexpected reply where the master should announce its snapshot: ${JSON.stringify(line.slice(0, 80))}`,
      );
    }
  }

  /** REPLCONF ACK: the master's view of our progress, and the heartbeat that keeps the link alive. */
  ack(offset: number): void {
    this.send(['REPLCONF', 'ACK', String(offset)]);
  }

  send(args: string[]): void {
    if (this.closed) return;
    this.socket.write(encodeCommand(args));
  }

  close(): void {
    this.closed = true;
    this.socket.destroy();
  }

  /** One command, one single-line reply (+..., -..., or :...), returned as text. */
  private async call(args: string[]): Promise<string> {
    this.send(args);
    for (;;) {
      const line = (await this.reader.line()).toString('utf8');
      if (line !== '') return line;
    }
  }

  private async expectOk(args: string[], what: string, ok = /^\+OK/): Promise<void> {
    const reply = await this.call(args);
    if (ok.test(reply)) return;
    if (/^-(NOPERM|NOAUTH|ERR unknown command)/i.test(reply)) {
      throw new RedisSetupError(`the source Redis refused ${what}: ${reply.slice(1)}. ${NOTIFICATIONS_HINT}`);
    }
    throw new Error(`${what} failed: ${reply}`);
  }
}

export function encodeCommand(args: readonly string[]): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)];
  for (const a of args) {
    const b = Buffer.from(a);
    parts.push(Buffer.from(`$${b.length}\r\n`), b, Buffer.from('\r\n'));
  }
  return Buffer.concat(parts);
}
