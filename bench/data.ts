import type { Redis } from 'ioredis';
import type { PresentKeyState } from '../shared/core/key-state';
import { itemAt } from './support';

type Pipeline = ReturnType<Redis['pipeline']>;

/** A benchmark value as text, the way the seed writes it. */
type SampleValue =
  | { type: 'string'; value: string }
  | { type: 'hash'; value: Record<string, string> }
  | { type: 'list' | 'set'; value: string[] }
  | { type: 'zset'; value: { member: string; score: number }[] };

export interface SampleKey {
  key: string;
  state: SampleValue;
}

/** The state the worker reads back for a sample: bytes, hash fields in byte order. */
export function sampleState({ state }: SampleKey): PresentKeyState {
  const b = (s: string): Buffer => Buffer.from(s, 'utf8');
  switch (state.type) {
    case 'string':
      return { exists: true, type: 'string', value: b(state.value) };
    case 'hash':
      return {
        exists: true,
        type: 'hash',
        value: Object.entries(state.value).map(([name, value]) => ({ name: b(name), value: b(value) })),
      };
    case 'list':
    case 'set':
      return { exists: true, type: state.type, value: state.value.map(b) };
    case 'zset':
      return {
        exists: true,
        type: 'zset',
        value: state.value.map((e) => ({ member: b(e.member), score: String(e.score) })),
      };
  }
}

const CITIES = ['Lisbon', 'Oslo', 'Lagos', 'Lima', 'Pune', 'Osaka', 'Quito', 'Tunis'];
const WORDS = ['red', 'fast', 'quiet', 'bright', 'solid', 'light', 'warm', 'fresh', 'smart', 'bold'];

/**
 * Key i of the benchmark keyspace, deterministic so that the Redis data and the documents the
 * baselines build in memory are the same: 40% hashes of 10 fields (profiles), 30% JSON strings
 * (catalog items), 10% each of small lists, sets and sorted sets.
 */
export function sampleKey(i: number): SampleKey {
  const city = itemAt(CITIES, i % CITIES.length);
  const word = itemAt(WORDS, i % WORDS.length);
  switch (i % 10) {
    case 0:
    case 1:
    case 2:
    case 3:
      return {
        key: `customer:${i}`,
        state: {
          type: 'hash',
          value: {
            name: `Customer ${i}`,
            email: `customer${i}@example.com`,
            city,
            country: city.slice(0, 2).toUpperCase(),
            plan: i % 3 === 0 ? 'pro' : 'free',
            visits: String(i % 997),
            score: String((i % 1000) / 10),
            created: String(1_700_000_000_000 + i * 1000),
            tags: `${word},${WORDS[(i + 3) % WORDS.length]}`,
            bio: `A ${word} customer from ${city} who likes ${WORDS[(i + 5) % WORDS.length]} things.`,
          },
        },
      };
    case 4:
    case 5:
    case 6:
      return {
        key: `product:${i}`,
        state: {
          type: 'string',
          value: JSON.stringify({
            sku: `SKU-${i}`,
            title: `${word} product ${i}`,
            price: (i % 5000) / 100,
            stock: i % 250,
            categories: [word, city.toLowerCase()],
            description: `The ${word} product number ${i}, shipped from ${city}.`,
          }),
        },
      };
    case 7:
      return {
        key: `feed:${i}`,
        state: { type: 'list', value: Array.from({ length: 5 }, (_, j) => `post ${i}-${j}`) },
      };
    case 8:
      return {
        key: `tags:${i}`,
        state: { type: 'set', value: [`t${i % 50}`, city.toLowerCase(), word, 'all'].sort() },
      };
    default:
      return {
        key: `board:${i}`,
        state: {
          type: 'zset',
          value: ['ada', 'bob', 'cy', 'dee', 'eve']
            .map((member, j) => ({ member, score: (i * (j + 1)) % 1000 }))
            .sort((a, b) => a.score - b.score || (a.member < b.member ? -1 : 1)),
        },
      };
  }
}

export function writeSample(pipe: Pipeline, { key, state }: SampleKey): void {
  switch (state.type) {
    case 'string':
      pipe.set(key, state.value);
      return;
    case 'hash':
      pipe.hset(key, state.value);
      return;
    case 'list':
      pipe.rpush(key, ...state.value);
      return;
    case 'set':
      pipe.sadd(key, ...state.value);
      return;
    case 'zset':
      pipe.zadd(key, ...state.value.flatMap((e) => [e.score, e.member]));
  }
}

/** Writes keys [from, from + count) in pipelines of `batch`. */
export async function seedKeys(redis: Redis, from: number, count: number, batch = 2000): Promise<void> {
  for (let start = from; start < from + count; start += batch) {
    const pipe = redis.pipeline();
    for (let i = start; i < Math.min(start + batch, from + count); i++) writeSample(pipe, sampleKey(i));
    await pipe.exec();
  }
}
