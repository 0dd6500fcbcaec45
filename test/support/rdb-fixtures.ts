import type { Redis } from 'ioredis';
import { asBuffer, type Bytes, type FieldPair, type KeyState } from '../../shared/core/key-state';
import type { DecodedValue } from '../../producers/capture/replication/rdb';

/** Far enough ahead that no TTL ends during a test. */
export const FAR_EXPIRY_MS = Date.now() + 24 * 3600 * 1000;

const big = (prefix: string, i: number): string => `${prefix}-${i}-${'x'.repeat(20)}`;

/**
 * Writes every type in its small (listpack/intset) and full (quicklist with many nodes,
 * hashtable, skiplist) encodings, strings of every RDB string encoding (int8/16/32, long
 * integers kept as text, LZF-compressible, incompressible, binary-unsafe UTF-8), and some TTLs.
 */
export async function writeEveryEncoding(redis: Redis, tag: string): Promise<void> {
  const k = (name: string): string => `${tag}:${name}`;
  const p = redis.pipeline();
  p.set(k('str:small'), 'hello');
  p.set(k('str:empty'), '');
  p.set(k('str:int8'), '-7');
  p.set(k('str:int16'), '30000');
  p.set(k('str:int32'), '-2000000000');
  p.set(k('str:int64'), '9007199254740993');
  p.set(k('str:lzf'), 'abcdefgh'.repeat(100));
  p.set(k('str:incompressible'), Array.from({ length: 60 }, (_, i) => ((i * 7919) % 997).toString(36)).join(''));
  p.set(k('str:utf8'), 'héllo wörld ✓ 🚀 '.repeat(3));
  p.set(k('str:ttl'), 'expiring', 'PXAT', FAR_EXPIRY_MS);

  p.rpush(k('list:small'), 'a', '1', '-300', '70000', '5000000000', 'b'.repeat(100), '');
  for (let i = 0; i < 3000; i += 500) {
    p.rpush(
      k('list:large'),
      ...Array.from({ length: 500 }, (_, j) => ((i + j) % 3 === 0 ? String(i + j) : big('item', i + j))),
    );
  }
  p.pexpireat(k('list:large'), FAR_EXPIRY_MS);

  p.sadd(k('set:intset'), 1, -2, 300, 70000, -5000000000, 9223372036854775807n.toString());
  p.sadd(k('set:small'), 'a', 'b', 'ç', '12');
  p.sadd(k('set:ints-large'), ...Array.from({ length: 600 }, (_, i) => String(i * 3)));
  p.sadd(k('set:large'), ...Array.from({ length: 300 }, (_, i) => big('member', i)));

  p.zadd(
    k('zset:small'),
    1,
    'one',
    2.5,
    'two and a half',
    -3,
    'minus',
    '+inf',
    'top',
    '-inf',
    'bottom',
    1,
    'also-one',
    1e-300,
    'tiny',
  );
  p.zadd(
    k('zset:large'),
    ...Array.from({ length: 300 }, (_, i) => [String(i % 50 === 0 ? 7 : i / 3), big('m', i)]).flat(),
  );
  p.zadd(
    k('zset:inf-large'),
    '+inf',
    'top',
    '-inf',
    'bottom',
    ...Array.from({ length: 200 }, (_, i) => [String(i), big('z', i)]).flat(),
  );

  p.hset(k('hash:small'), { f1: 'v1', n: '42', neg: '-1000', empty: '', é: 'ü' });
  p.hset(
    k('hash:large'),
    Object.fromEntries(Array.from({ length: 300 }, (_, i) => [`field-${i}`, i % 2 === 0 ? String(i) : big('v', i)])),
  );
  p.hset(k('hash:long-value'), { short: 's', long: 'y'.repeat(200) });
  p.pexpireat(k('hash:small'), FAR_EXPIRY_MS);

  p.xadd(k('stream:small'), '1-1', 'a', '1', 'b', 'two');
  p.xadd(k('stream:small'), '1-2', 'a', '3', 'b', 'four');
  p.xadd(k('stream:small'), '5-0', 'other', 'fields', 'n', '-12');
  p.xadd(k('stream:small'), '5-1', 'a', 'deleted', 'b', 'soon');
  p.xadd(k('stream:small'), '18446744073709551614-3', 'a', 'huge id', 'b', 'x');
  p.xdel(k('stream:small'), '5-1');
  for (let i = 0; i < 350; i++) p.xadd(k('stream:large'), '*', 'i', String(i), 'text', big('t', i));
  p.xgroup('CREATE', k('stream:large'), 'g1', '0');
  p.xreadgroup('GROUP', 'g1', 'alice', 'COUNT', 20, 'STREAMS', k('stream:large'), '>');
  p.xreadgroup('GROUP', 'g1', 'bob', 'COUNT', 5, 'STREAMS', k('stream:large'), '>');
  p.xgroup('CREATE', k('stream:large'), 'g2', '$');
  await p.exec();
}

/** A key's value as text, the shape the RDB decoder gives: what both sides are compared in. */
type TextState = { type: 'unsupported'; redisType: string } | { type: string; value: unknown };

/** A decoded value in the comparison shape. */
export function asKeyState(v: DecodedValue): TextState {
  if (v.type === 'module') return { type: 'unsupported', redisType: v.moduleName };
  if (v.type === 'set') return { type: 'set', value: byBytes(v.value) };
  return { type: v.type, value: v.value };
}

/** Sets compared as sets: members in byte order on both sides. */
function byBytes(members: readonly string[]): string[] {
  return [...members].sort((a, b) => Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8')));
}

/** A key's state as readKeyStates reports it (bytes), in the comparison shape, TTL aside (compared separately, exactly). */
export function withoutTtl(state: KeyState | undefined): TextState | undefined {
  if (!state?.exists) return undefined;
  const text = (b: Bytes): string => asBuffer(b).toString('utf8');
  const fields = (pairs: readonly FieldPair[]): Record<string, string> =>
    Object.fromEntries(pairs.map((p) => [text(p.name), text(p.value)]));
  switch (state.type) {
    case 'unsupported':
      return { type: 'unsupported', redisType: state.redisType };
    case 'string':
      return { type: 'string', value: text(state.value) };
    case 'hash':
      return { type: 'hash', value: fields(state.value) };
    case 'list':
      return { type: 'list', value: state.value.map(text) };
    case 'set':
      return { type: 'set', value: byBytes(state.value.map(text)) };
    case 'zset':
      return { type: 'zset', value: state.value.map((e) => ({ member: text(e.member), score: redisScore(e.score) })) };
    case 'stream':
      return { type: 'stream', value: state.value.map((e) => ({ id: e.id, fields: fields(e.fields) })) };
  }
}

function redisScore(s: string): number {
  if (s === 'inf' || s === '+inf') return Infinity;
  if (s === '-inf') return -Infinity;
  return Number(s);
}

/** The RDB encoding Redis 7.0 writes for each OBJECT ENCODING. */
export function rdbEncodingFor(type: string, objectEncoding: string): string {
  if (type === 'string') return 'string';
  return objectEncoding;
}
