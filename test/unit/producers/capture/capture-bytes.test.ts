import { decodeAutoClaim, decodeReadGroup, parseEntry } from '../../../../producers/capture/outbox/entry';
import { CommandKeys } from '../../../../producers/capture/replication/command-keys';
import { ByteReader, chunksOfBuffer, crc64, readRdbKeys } from '../../../../producers/capture/replication/rdb';
import { keyFromBytes, keyToBytes } from '../../../../shared/core/bytes';
import type { RedisClient } from '../../../../shared/platform/redis';

/*
 * Every capture path hands on a key name that is not UTF-8 as its escaped string
 * (shared/core/bytes.ts), which gives the original bytes back; the empty name is a key too.
 */

const BINARY = Buffer.from([0x75, 0x3a, 0xff, 0xfe]);
const UTF8 = Buffer.from('ключ:1');
const EMPTY = Buffer.alloc(0);
const bytesOf = (keys: readonly string[]): Buffer[] => keys.map(keyToBytes);

describe('outbox entries read as Buffers', () => {
  it('XREADGROUP: a binary key keeps its bytes; names, ids and db read as text', () => {
    const reply = [
      [
        Buffer.from('s'),
        [
          [
            Buffer.from('1-0'),
            [Buffer.from('key'), BINARY, Buffer.from('db'), Buffer.from('2'), Buffer.from('key'), UTF8],
          ],
        ],
      ],
    ];
    const [raw] = decodeReadGroup(reply);
    const entry = parseEntry(raw!, { defaultDb: 0, databases: new Set([0, 2]) });
    if (entry.kind !== 'change') throw new Error(`not a change: ${JSON.stringify(entry)}`);
    expect(entry).toMatchObject({ id: '1-0', db: 2 });
    expect(bytesOf(entry.keys)).toEqual([BINARY, UTF8]);
  });

  it('XAUTOCLAIM: entries, the next cursor and deleted ids', () => {
    const reply = decodeAutoClaim([
      Buffer.from('7-0'),
      [
        [Buffer.from('5-0'), [Buffer.from('key'), BINARY]],
        [Buffer.from('5-1'), null],
      ],
      [Buffer.from('6-0')],
    ]);
    expect(reply.next).toBe('7-0');
    expect(reply.deleted).toEqual(['6-0']);
    expect(reply.entries[1]).toEqual({ id: '5-1', fields: null });
    expect(keyToBytes(reply.entries[0]!.fields![1]!)).toEqual(BINARY);
  });
});

describe('replicated commands', () => {
  // COMMAND rows: name, arity, flags, first key, last key, step.
  const table = [
    ['set', -3, ['write'], 1, 1, 1],
    ['del', -2, ['write'], 1, -1, 1],
    ['zunionstore', -4, ['write', 'movablekeys'], 0, 0, 0],
  ];
  const server = {
    call: async (): Promise<unknown> => table,
    // COMMAND GETKEYS answers with the key arguments as given.
    callBuffer: async (...args: (string | Buffer)[]): Promise<Buffer[]> => [
      args[3] as Buffer,
      args[5] as Buffer,
      args[6] as Buffer,
    ],
  } as unknown as RedisClient;
  const cmd = (...args: (string | Buffer)[]): Buffer[] => args.map((a) => (Buffer.isBuffer(a) ? a : Buffer.from(a)));

  it('fixed key positions and the ones the server tells', async () => {
    const keys = await CommandKeys.load(server);
    expect(bytesOf((await keys.keys(cmd('SET', BINARY, 'v'))) as string[])).toEqual([BINARY]);
    expect(bytesOf((await keys.keys(cmd('DEL', EMPTY, BINARY, UTF8))) as string[])).toEqual([EMPTY, BINARY, UTF8]);
    expect(bytesOf((await keys.keys(cmd('ZUNIONSTORE', BINARY, '2', EMPTY, UTF8))) as string[])).toEqual([
      BINARY,
      EMPTY,
      UTF8,
    ]);
  });
});

describe('RDB key names', () => {
  const str = (b: Buffer): Buffer => Buffer.concat([Buffer.from([b.length]), b]);
  function rdb(body: Buffer[]): Buffer {
    const head = Buffer.concat([Buffer.from('REDIS0010'), ...body, Buffer.from([0xff])]);
    const crc = Buffer.alloc(8);
    crc.writeBigUInt64LE(crc64(head));
    return Buffer.concat([head, crc]);
  }

  it('a binary name and the empty name', async () => {
    // SELECT 0, then three string keys (type 0, name, value).
    const file = rdb([
      Buffer.from([0xfe, 0]),
      ...[BINARY, EMPTY, UTF8].flatMap((k) => [Buffer.from([0]), str(k), str(Buffer.from('v'))]),
    ]);
    const names: string[] = [];
    for await (const r of readRdbKeys(new ByteReader(chunksOfBuffer(file)))) if (r.kind === 'key') names.push(r.key);
    expect(bytesOf(names)).toEqual([BINARY, EMPTY, UTF8]);
    expect(names[0]).toBe(keyFromBytes(BINARY));
  });
});
