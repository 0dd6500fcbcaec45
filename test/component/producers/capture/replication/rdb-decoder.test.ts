import { createReadStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import {
  ByteReader,
  chunksOf,
  decodeDumpPayload,
  readRdb,
  readRdbKeys,
  type RdbKeyRecord,
  type RdbRecord,
} from '../../../../../producers/capture/replication/rdb';
import { readKeyStates } from '../../../../../shared/core/key-state';
import {
  asKeyState,
  FAR_EXPIRY_MS,
  rdbEncodingFor,
  withoutTtl,
  writeEveryEncoding,
} from '../../../../support/rdb-fixtures';
import { startRedis, type RedisServerHandle } from '../../../../support/redis-server';

const DATABASES = [0, 3, 9];

describe('RDB and DUMP decoding against a real redis-server', () => {
  let dir: string;
  let server: RedisServerHandle;
  let redis: Redis;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'res-rdb-'));
    server = await startRedis({
      args: [
        '--dir',
        dir,
        '--dbfilename',
        'x.rdb',
        '--rdbcompression',
        'yes',
        '--rdbchecksum',
        'yes',
        '--list-compress-depth',
        '1',
        '--enable-debug-command',
        'yes',
      ],
    });
    redis = new Redis(server.url);
    // Elements of 100 bytes and more become plain (unpacked) quicklist nodes.
    await redis.call('DEBUG', 'QUICKLIST-PACKED-THRESHOLD', '100');
    for (const db of DATABASES) {
      await redis.select(db);
      await writeEveryEncoding(redis, `db${db}`);
    }
    await redis.select(0);
  });

  afterAll(async () => {
    redis.disconnect();
    await server.stop();
    await rm(dir, { recursive: true, force: true });
  });

  async function keysOf(db: number): Promise<string[]> {
    await redis.select(db);
    return (await redis.keys('*')).sort();
  }

  async function objectEncoding(db: number, key: string): Promise<string> {
    await redis.select(db);
    return String(await redis.object('ENCODING', key));
  }

  async function debugObject(key: string): Promise<Record<string, string>> {
    const line = String(await redis.call('DEBUG', 'OBJECT', key));
    return Object.fromEntries(line.split(' ').map((kv) => kv.split(':') as [string, string]));
  }

  it('the fixture holds multi-node, plain and compressed quicklists and LZF-compressible strings', async () => {
    await redis.select(0);
    const large = await debugObject('db0:list:large');
    expect(Number(large.ql_nodes)).toBeGreaterThan(5);
    expect(large.ql_compressed).toBe('1');
    // 7 elements, the 100-byte one alone in a plain node between two packed ones.
    expect((await debugObject('db0:list:small')).ql_nodes).toBe('3');
    expect(Number((await debugObject('db0:str:lzf')).serializedlength)).toBeLessThan(100);
  });

  it('every key of an RDB written by SAVE decodes to what the server holds, with its TTL', async () => {
    await redis.save();
    // Small chunks so values, lengths and listpacks straddle chunk boundaries.
    const reader = new ByteReader(chunksOf(createReadStream(join(dir, 'x.rdb'), { highWaterMark: 997 })));
    const records: RdbRecord[] = [];
    for await (const record of readRdb(reader)) records.push(record);
    expect(await reader.atEnd()).toBe(true);

    const aux = Object.fromEntries(records.flatMap((r) => (r.kind === 'aux' ? [[r.name, r.value]] : [])));
    expect(aux['redis-ver']).toBe('7.0.15');
    const keys = records.filter((r): r is RdbKeyRecord => r.kind === 'key');
    const encodings = new Set<string>();
    for (const db of DATABASES) {
      const inDb = keys.filter((r) => r.db === db);
      expect(inDb.map((r) => r.key).sort()).toEqual(await keysOf(db));
      await redis.select(db);
      const states = await readKeyStates(
        redis,
        inDb.map((r) => r.key),
      );
      for (const [i, record] of inDb.entries()) {
        expect({ key: record.key, state: asKeyState(record) }).toEqual({
          key: record.key,
          state: withoutTtl(states[i]),
        });
        const expireAt = await redis.pexpiretime(record.key);
        expect({ key: record.key, expireAt: record.expireAtMs ?? -1 }).toEqual({ key: record.key, expireAt });
        expect(rdbEncodingFor(record.type, await objectEncoding(db, record.key))).toBe(record.encoding);
        encodings.add(`${record.type}:${record.encoding}`);
      }
    }
    expect(keys.filter((r) => r.expireAtMs === FAR_EXPIRY_MS)).toHaveLength(3 * DATABASES.length);
    expect([...encodings].sort()).toEqual([
      'hash:hashtable',
      'hash:listpack',
      'list:quicklist',
      'set:hashtable',
      'set:intset',
      'stream:stream',
      'string:string',
      'zset:listpack',
      'zset:skiplist',
    ]);
  });

  it('reading keys only (values skipped, not decoded) yields the same keys, types and expiries', async () => {
    await redis.save();
    const full: unknown[] = [];
    for await (const r of readRdb(new ByteReader(chunksOf(createReadStream(join(dir, 'x.rdb')))))) {
      if (r.kind === 'key') full.push({ db: r.db, key: r.key, rdbType: r.rdbType, expireAtMs: r.expireAtMs });
    }
    const reader = new ByteReader(chunksOf(createReadStream(join(dir, 'x.rdb'), { highWaterMark: 1009 })));
    const refs: unknown[] = [];
    for await (const r of readRdbKeys(reader))
      if (r.kind === 'key') refs.push({ db: r.db, key: r.key, rdbType: r.rdbType, expireAtMs: r.expireAtMs });
    expect(await reader.atEnd()).toBe(true);
    expect(refs).toEqual(full);
    expect(refs).toHaveLength((await keysOf(0)).length * DATABASES.length);
  });

  it('the DUMP payload of every key decodes to what the server holds', async () => {
    const db = DATABASES[1] as number;
    const keys = await keysOf(db);
    const states = await readKeyStates(redis, keys);
    const seen = new Set<string>();
    for (const [i, key] of keys.entries()) {
      const payload = await redis.dumpBuffer(key);
      const { rdbVersion, value } = await decodeDumpPayload(payload);
      expect(rdbVersion).toBe(10);
      expect({ key, state: asKeyState(value) }).toEqual({ key, state: withoutTtl(states[i]) });
      expect(rdbEncodingFor(value.type, await objectEncoding(db, key))).toBe(value.encoding);
      seen.add(value.encoding);
    }
    expect([...seen].sort()).toEqual(['hashtable', 'intset', 'listpack', 'quicklist', 'skiplist', 'stream', 'string']);
  });
});
