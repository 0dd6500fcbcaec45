import type { Cluster, Redis } from 'ioredis';

/**
 * The keys that a text-only sync alters or drops (issue 17), for the fidelity tests of every
 * capture mode: each has its own key, so Cluster spreads them over the masters.
 */
export interface ByteCase {
  key: Buffer;
  write(redis: Redis | Cluster): Promise<unknown>;
}

const b = (...parts: (string | number[])[]): Buffer =>
  Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'utf8') : Buffer.from(p))));

/** Nested deeper than Elasticsearch's limit of 1000: indexed as its raw text. */
export const DEEP_JSON = `{"a":${'['.repeat(1100)}${']'.repeat(1100)}}`;
export const BIG_JSON = '{"id":12345678901234567890,"price":1.0,"n":1}';

export function byteCases(prefix: string): ByteCase[] {
  const k = (...parts: (string | number[])[]): Buffer => b(prefix, ...parts);
  const hugeHash = Object.fromEntries(Array.from({ length: 200 }, (_, i) => [`f${i}`, `v${i}`]));
  return [
    { key: k('str:bin'), write: (r) => r.set(k('str:bin'), b([0x00, 0xff, 0xfe, 0x80], 'tail')) },
    {
      // SETRANGE over the second byte of "é" leaves its first byte alone: not UTF-8 any more.
      key: k('str:split'),
      write: async (r) => {
        await r.set(k('str:split'), 'héllo');
        await r.setrange(k('str:split'), 2, 'X');
      },
    },
    {
      key: k('str:append'),
      write: async (r) => {
        await r.set(k('str:append'), 'text');
        await r.append(k('str:append'), b([0xff, 0x00]));
      },
    },
    { key: k('hll'), write: (r) => r.pfadd(k('hll'), 'a', 'b', 'c') },
    {
      key: k('bitmap'),
      write: async (r) => {
        await r.setbit(k('bitmap'), 7, 1);
        await r.setbit(k('bitmap'), 100, 1);
      },
    },
    { key: k('json:big'), write: (r) => r.set(k('json:big'), BIG_JSON) },
    {
      key: k('json:exact'),
      write: (r) => r.set(k('json:exact'), '{ "a": 1, "b": "x\\u0041", "c": [true, null, 2.5] }'),
    },
    { key: k('json:deep'), write: (r) => r.set(k('json:deep'), DEEP_JSON) },
    { key: k('hash:bin'), write: (r) => r.hset(k('hash:bin'), b([0xff, 0x00]), 'v1', 'ok', b([0xfe])) },
    {
      key: k('hash:proto'),
      write: (r) => r.hset(k('hash:proto'), '__proto__', 'x', 'constructor', 'y', '10', 'ten', '2', 'two'),
    },
    { key: k('hash:big'), write: (r) => r.hset(k('hash:big'), hugeHash) },
    { key: k('list:bin'), write: (r) => r.rpush(k('list:bin'), 'a', b([0xff]), '', 'a') },
    { key: k('set:bin'), write: (r) => r.sadd(k('set:bin'), b([0xff]), b([0xfe, 0x01]), 'text') },
    {
      key: k('zset:bin'),
      write: (r) => r.zadd(k('zset:bin'), 'inf', b([0xff]), '-inf', 'a', '1.1', 'b', '0', 'c', '1e300', 'd'),
    },
    {
      key: k('stream:repeat'),
      write: async (r) => {
        await r.xadd(k('stream:repeat'), '1-1', 'a', '1', 'a', '2', b([0xff]), b([0xfe]));
        await r.xadd(k('stream:repeat'), '1-2', '__proto__', 'p', 'b', '3', '1', 'one');
      },
    },
    { key: k([0xff, 0xfe], ':str'), write: (r) => r.set(k([0xff, 0xfe], ':str'), 'binary name') },
    { key: k('hash:', [0xc3]), write: (r) => r.hset(k('hash:', [0xc3]), 'f', 'binary name') },
    {
      key: k('long:', 'k'.repeat(40000)),
      write: (r) => r.set(k('long:', 'k'.repeat(40000)), 'a key over the keyword limit'),
    },
    { key: k('ttl'), write: (r) => r.set(k('ttl'), 'expires', 'PX', 3_600_000) },
  ];
}

export const EMPTY_KEY: ByteCase = { key: Buffer.alloc(0), write: (r) => r.set(Buffer.alloc(0), 'the empty name') };

export async function writeCases(
  redis: Redis | Cluster,
  cases: readonly ByteCase[],
  after?: (key: Buffer) => Promise<unknown>,
): Promise<void> {
  for (const c of cases) {
    await c.write(redis);
    await after?.(c.key);
  }
}
