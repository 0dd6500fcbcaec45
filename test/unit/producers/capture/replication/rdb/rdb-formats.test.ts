import { createLogger, type Logger } from '../../../../../../shared/platform/logger';
import {
  ByteReader,
  chunksOfBuffer,
  crc64,
  decodeDumpPayload,
  lzfDecompress,
  RdbFormatError,
  readRdb,
  type RdbRecord,
} from '../../../../../../producers/capture/replication/rdb';

/*
 * Formats the installed redis-server (7.0) cannot write — Redis 7.2's set listpacks and
 * stream v3, 7.4's hash field TTLs and slot info, module values — built by hand from the
 * documented layouts. Lengths and listpack entries use the small encodings only.
 */

const len = (n: number): Buffer => {
  if (n < 64) return Buffer.from([n]);
  if (n < 16384) return Buffer.from([0x40 | (n >> 8), n & 0xff]);
  const b = Buffer.alloc(5);
  b[0] = 0x80;
  b.writeUInt32BE(n, 1);
  return b;
};
const str = (s: string | Buffer): Buffer => {
  const b = Buffer.isBuffer(s) ? s : Buffer.from(s);
  return Buffer.concat([len(b.length), b]);
};
const ms = (t: number): Buffer => {
  const b = Buffer.alloc(8);
  b.writeBigInt64LE(BigInt(t));
  return b;
};

/** A listpack of short strings and 7/13/32-bit integers. */
function listpack(items: (string | number)[]): Buffer {
  const entries = items.map((item) => {
    let body: Buffer;
    if (typeof item === 'number' && item >= 0 && item < 128) body = Buffer.from([item]);
    else if (typeof item === 'number' && item >= -4096 && item < 4096) {
      const u = item < 0 ? item + 8192 : item;
      body = Buffer.from([0xc0 | (u >> 8), u & 0xff]);
    } else if (typeof item === 'number') {
      body = Buffer.alloc(5);
      body[0] = 0xf3;
      body.writeInt32LE(item, 1);
    } else body = Buffer.concat([Buffer.from([0x80 | Buffer.byteLength(item)]), Buffer.from(item)]);
    return Buffer.concat([body, Buffer.from([body.length])]);
  });
  const content = Buffer.concat(entries);
  const header = Buffer.alloc(6);
  header.writeUInt32LE(6 + content.length + 1, 0);
  header.writeUInt16LE(items.length, 4);
  return Buffer.concat([header, content, Buffer.from([0xff])]);
}

function rdb(version: number, body: Buffer[], checksum = true): Buffer {
  const head = Buffer.concat([Buffer.from(`REDIS${String(version).padStart(4, '0')}`), ...body, Buffer.from([0xff])]);
  if (!checksum) return Buffer.concat([head, Buffer.alloc(8)]);
  const crc = Buffer.alloc(8);
  crc.writeBigUInt64LE(crc64(head));
  return Buffer.concat([head, crc]);
}

async function decode(file: Buffer, logger?: Logger): Promise<RdbRecord[]> {
  const out: RdbRecord[] = [];
  const opts = logger === undefined ? { nowMs: 1_000_000 } : { nowMs: 1_000_000, logger };
  for await (const r of readRdb(new ByteReader(chunksOfBuffer(file)), opts)) out.push(r);
  return out;
}

const moduleId = (name: string, version: number): Buffer => {
  const charset = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
  let id = 0n;
  for (const c of name) id = (id << 6n) | BigInt(charset.indexOf(c));
  id = (id << 10n) | BigInt(version);
  const b = Buffer.alloc(9);
  b[0] = 0x81;
  b.writeBigUInt64BE(id, 1);
  return b;
};

describe('RDB formats beyond Redis 7.0', () => {
  it('CRC-64/Jones matches the published check value', () => {
    expect(crc64(Buffer.from('123456789'))).toBe(0xe9c6d914c4b8d9can);
  });

  it('LZF: literal runs and overlapping back references', () => {
    // "abc" literal, then a back reference of length 6 at distance 3: "abcabcabc".
    const compressed = Buffer.from([0x02, 0x61, 0x62, 0x63, (4 << 5) | 0, 0x02]);
    expect(lzfDecompress(compressed, 9).toString()).toBe('abcabcabc');
    expect(() => lzfDecompress(compressed, 8)).toThrow(RdbFormatError);
  });

  it('decodes 7.2 set listpacks, 7.4 hash field TTLs, slot info, and skips module values and module aux data', async () => {
    const logged: string[] = [];
    const logger = createLogger('warn', { write: (line: string) => void logged.push(line) });
    const records = await decode(
      rdb(12, [
        Buffer.from([0xfa]),
        str('redis-ver'),
        str('7.4.0'),
        Buffer.from([0xf5]),
        str('#!lua name=lib\nredis.register_function("f", function() return 1 end)'),
        Buffer.from([0xf7]),
        moduleId('auxmodule', 3),
        len(2),
        len(2),
        len(5),
        str('aux'),
        len(0),
        Buffer.from([0xfe]),
        len(2),
        Buffer.from([0xfb]),
        len(4),
        len(1),
        Buffer.from([0xf4]),
        len(100),
        len(4),
        len(1),
        Buffer.from([20]),
        str('s'),
        str(listpack(['b', 7, 'a', -5])),
        // listpackex: min expiry, then field/value/expiry triples (0 = no TTL); one field already expired.
        Buffer.from([25]),
        str('hlp'),
        ms(5000),
        str(listpack(['f1', 'v1', 0, 'gone', 'x', 10, 'f2', 'v2', 2_000_000])),
        // metadata hash: min expiry, count, then TTL relative to it (+1; 0 = none), field, value.
        Buffer.from([0xfc]),
        ms(9_000_000),
        Buffer.from([24]),
        str('hmeta'),
        ms(999_000),
        len(3),
        len(0),
        str('keep'),
        str('1'),
        len(1),
        str('expired'),
        str('2'),
        len(2000),
        str('later'),
        str('3'),
        Buffer.from([7]),
        str('mod'),
        moduleId('mymodule1', 7),
        len(2),
        len(42),
        len(1),
        len(5),
        len(3),
        Buffer.alloc(4),
        len(4),
        Buffer.alloc(8),
        len(5),
        str('payload'),
        len(0),
        Buffer.from([0]),
        str('after'),
        str('still decoded'),
      ]),
      logger,
    );
    const warnings = logged.map((line) => JSON.parse(line) as { msg: string; module: string; key?: string });
    expect(warnings.map((w) => [w.module, w.key])).toEqual([
      ['auxmodule', undefined],
      ['mymodule1', 'mod'],
    ]);
    expect(records).toEqual([
      { kind: 'aux', name: 'redis-ver', value: '7.4.0' },
      { kind: 'function', code: '#!lua name=lib\nredis.register_function("f", function() return 1 end)' },
      { kind: 'resizedb', db: 2, keys: 4, expires: 1 },
      { kind: 'key', db: 2, key: 's', type: 'set', value: ['-5', '7', 'a', 'b'], rdbType: 20, encoding: 'listpack' },
      {
        kind: 'key',
        db: 2,
        key: 'hlp',
        type: 'hash',
        value: { f1: 'v1', f2: 'v2' },
        rdbType: 25,
        encoding: 'listpackex',
      },
      {
        kind: 'key',
        db: 2,
        key: 'hmeta',
        type: 'hash',
        value: { keep: '1', later: '3' },
        rdbType: 24,
        encoding: 'hashtable',
        expireAtMs: 9_000_000,
      },
      {
        kind: 'key',
        db: 2,
        key: 'mod',
        type: 'module',
        moduleName: 'mymodule1',
        moduleVersion: 7,
        rdbType: 7,
        encoding: 'module',
      },
      { kind: 'key', db: 2, key: 'after', type: 'string', value: 'still decoded', rdbType: 0, encoding: 'string' },
    ]);
  });

  it('decodes a v3 stream (7.2) with deleted entries, consumer groups and active times', async () => {
    const masterId = Buffer.alloc(16);
    masterId.writeBigUInt64BE(100n, 0);
    masterId.writeBigUInt64BE(0n, 8);
    const nodeLp = listpack([
      2,
      1,
      2,
      'a',
      'b',
      0, // master: 2 live, 1 deleted, fields a b, terminator
      2,
      0,
      0,
      'x',
      'y',
      6, // SAMEFIELDS, 100-0
      3,
      0,
      1,
      'z',
      'w',
      6, // SAMEFIELDS + DELETED, 100-1
      0,
      5,
      0,
      1,
      'c',
      'd',
      7, // own fields, 105-0
    ]);
    const pelId = Buffer.alloc(16);
    const records = await decode(
      rdb(11, [
        Buffer.from([21]),
        str('st'),
        len(1),
        str(masterId),
        str(nodeLp),
        len(2),
        len(105),
        len(0),
        len(100),
        len(0),
        len(100),
        len(1),
        len(3),
        len(1),
        str('grp'),
        len(105),
        len(0),
        len(2),
        len(1),
        pelId,
        ms(5),
        len(1),
        len(1),
        str('alice'),
        ms(6),
        ms(7),
        len(1),
        pelId,
      ]),
    );
    expect(records).toEqual([
      {
        kind: 'key',
        db: 0,
        key: 'st',
        type: 'stream',
        rdbType: 21,
        encoding: 'stream',
        value: [
          { id: '100-0', fields: { a: 'x', b: 'y' } },
          { id: '105-0', fields: { c: 'd' } },
        ],
      },
    ]);
  });

  it('rejects a corrupt checksum, a truncated stream and an unknown version; accepts a zero checksum', async () => {
    const body = [Buffer.from([0]), str('k'), str('v')];
    const good = rdb(10, body);
    const bad = Buffer.from(good);
    bad[bad.length - 1] = (bad[bad.length - 1] as number) ^ 0xff;
    await expect(decode(bad)).rejects.toThrow(/checksum mismatch/);
    await expect(decode(good.subarray(0, good.length - 12))).rejects.toThrow(/stream ended/);
    await expect(decode(rdb(13, body))).rejects.toThrow(/version 13/);
    expect(await decode(rdb(10, body, false))).toHaveLength(1);
  });

  it('a DUMP payload checks its CRC and refuses trailing bytes', async () => {
    const build = (value: Buffer): Buffer => {
      const head = Buffer.concat([value, Buffer.from([10, 0])]);
      const crc = Buffer.alloc(8);
      crc.writeBigUInt64LE(crc64(head));
      return Buffer.concat([head, crc]);
    };
    const payload = build(Buffer.concat([Buffer.from([0]), str('hello')]));
    expect(await decodeDumpPayload(payload)).toEqual({
      rdbVersion: 10,
      value: { type: 'string', value: 'hello', rdbType: 0, encoding: 'string' },
    });
    const corrupt = Buffer.from(payload);
    corrupt[2] = 0x41;
    await expect(decodeDumpPayload(corrupt)).rejects.toThrow(/checksum/);
    await expect(
      decodeDumpPayload(build(Buffer.concat([Buffer.from([0]), str('hello'), Buffer.from([1])]))),
    ).rejects.toThrow(/after its value/);
  });
});
