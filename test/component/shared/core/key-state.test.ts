import { Redis } from 'ioredis';
import { keyFromBytes } from '../../../../shared/core/bytes';
import { asBuffer, readKeyStates as readStates, type FieldPair } from '../../../../shared/core/key-state';
import { inBytes } from '../../../support/read-reply';
import { startRedis, type RedisServerHandle } from '../../../support/redis-server';

let server: RedisServerHandle;
let redis: Redis;

beforeAll(async () => {
  server = await startRedis();
  redis = new Redis(server.url);
});

afterAll(async () => {
  await redis?.quit().catch(() => redis.disconnect());
  await server?.stop();
});

beforeEach(async () => {
  await redis.flushall();
});

const b = (s: string): Buffer => Buffer.from(s, 'utf8');

/** The states with every item as bytes, however the reader handed them over. */
const readKeyStates = async (client: Redis, keys: string[]) => (await readStates(client, keys)).map(inBytes);

describe('readKeyStates', () => {
  it('reads every type as bytes, an absent key as absent, in the order asked', async () => {
    const binary = Buffer.from([0x00, 0xff, 0x80, 0x0a]);
    await redis.set('s', binary);
    await redis.hset('h', Buffer.from([0xfe]), binary);
    await redis.rpush('l', 'b', 'a', 'b');
    await redis.sadd('set', 'x');
    await redis.zadd('z', '-inf', 'm', '1.5', 'n');
    await redis.xadd('x', '1-1', 'f', 'v', 'f', 'w');
    await redis.xadd('empty-stream', '1-1', 'f', 'v');
    await redis.xdel('empty-stream', '1-1'); // an empty stream still exists
    const states = await readKeyStates(redis, ['missing', 's', 'h', 'l', 'set', 'z', 'x', 'empty-stream']);
    expect(states).toEqual([
      { exists: false },
      { exists: true, type: 'string', value: binary },
      { exists: true, type: 'hash', value: [{ name: Buffer.from([0xfe]), value: binary }] },
      { exists: true, type: 'list', value: [b('b'), b('a'), b('b')] },
      { exists: true, type: 'set', value: [b('x')] },
      {
        exists: true,
        type: 'zset',
        value: [
          { member: b('m'), score: '-inf' },
          { member: b('n'), score: '1.5' },
        ],
      },
      {
        exists: true,
        type: 'stream',
        value: [
          {
            id: '1-1',
            fields: [
              { name: b('f'), value: b('v') },
              { name: b('f'), value: b('w') },
            ],
          },
        ],
      },
      { exists: true, type: 'stream', value: [] },
    ]);
  });

  it('tells a key’s time to live, and only when it has one', async () => {
    await redis.set('ttl', 'v', 'PX', 60_000);
    await redis.set('no-ttl', 'v');
    const [withTtl, without] = await readKeyStates(redis, ['ttl', 'no-ttl']);
    expect(withTtl).toMatchObject({ exists: true, type: 'string' });
    expect(withTtl?.exists && withTtl.ttlMs).toBeGreaterThan(50_000);
    expect(without).toEqual({ exists: true, type: 'string', value: b('v') });
  });

  it('answers one state per key, in order, across several script calls', async () => {
    // More keys than one script call takes (100), some absent, of mixed types.
    const keys = Array.from({ length: 257 }, (_, i) => `k${i}`);
    const pipe = redis.pipeline();
    keys.forEach((k, i) => {
      if (i % 3 === 0) pipe.set(k, `v${i}`);
      else if (i % 3 === 1) pipe.rpush(k, `v${i}`);
    });
    await pipe.exec();
    const states = await readKeyStates(redis, keys);
    expect(states).toHaveLength(keys.length);
    states.forEach((state, i) => {
      if (i % 3 === 0) expect(state).toEqual({ exists: true, type: 'string', value: b(`v${i}`) });
      else if (i % 3 === 1) expect(state).toEqual({ exists: true, type: 'list', value: [b(`v${i}`)] });
      else expect(state).toEqual({ exists: false });
    });
  });

  it('reads collections longer than the script packs in one call, empty values and multi-entry streams', async () => {
    // Item lengths of up to 200 items go in one struct.pack call, longer ones one by one.
    const fields = Array.from({ length: 1000 }, (_, i) => [b(`f${i}`), Buffer.from([i & 0xff, 0x00, 0xff])]);
    await redis.hset('big-hash', ...fields.flat());
    const items = Array.from({ length: 201 }, (_, i) => b(i % 7 === 0 ? '' : `item-${i}`));
    await redis.rpush('big-list', ...items);
    await redis.set('empty', '');
    await redis.xadd('s', '1-1', 'a', '');
    await redis.xadd('s', '2-0', 'b', 'x', 'c', 'y');
    const states = await readKeyStates(redis, ['big-hash', 'big-list', 'empty', 's']);
    const [hash, list, empty, stream] = states;
    const byName = (x: FieldPair, y: FieldPair): number => Buffer.compare(asBuffer(x.name), asBuffer(y.name));
    expect(hash?.exists && hash.type === 'hash' ? [...hash.value].sort(byName) : hash).toEqual(
      fields.map(([name, value]) => ({ name: name as Buffer, value: value as Buffer })).sort(byName),
    );
    expect(list).toEqual({ exists: true, type: 'list', value: items });
    expect(empty).toEqual({ exists: true, type: 'string', value: b('') });
    expect(stream).toEqual({
      exists: true,
      type: 'stream',
      value: [
        { id: '1-1', fields: [{ name: b('a'), value: b('') }] },
        {
          id: '2-0',
          fields: [
            { name: b('b'), value: b('x') },
            { name: b('c'), value: b('y') },
          ],
        },
      ],
    });
  });

  it('reads a key whose name is not UTF-8 by its exact bytes', async () => {
    const name = Buffer.from([0x6b, 0xc3, 0x28, 0xff]);
    await redis.set(name, 'v');
    const [state] = await readKeyStates(redis, [keyFromBytes(name)]);
    expect(state).toEqual({ exists: true, type: 'string', value: b('v') });
  });
});
