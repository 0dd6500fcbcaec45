import { Redis } from 'ioredis';
import { VersionCounter, versionKey } from '../../../../shared/core/versions';
import { startRedis, type RedisServerHandle } from '../../../support/redis-server';

let server: RedisServerHandle;
const clients: Redis[] = [];

function client(): Redis {
  const c = new Redis(server.url, { lazyConnect: false });
  clients.push(c);
  return c;
}

beforeAll(async () => {
  server = await startRedis();
});

afterAll(async () => {
  await Promise.all(clients.map((c) => c.quit().catch(() => c.disconnect())));
  await server?.stop();
});

let n = 0;
/** A counter key of the test's own. */
const freshKey = (): string => `test-${++n}:version`;

describe('VersionCounter', () => {
  it('versionKey sits under the queue prefix', () => {
    expect(versionKey('redis-es-sync')).toBe('redis-es-sync:version');
  });

  it('allocate(n) returns the first of n consecutive versions', async () => {
    const now = 1_700_000_000_000;
    const counter = new VersionCounter(client(), freshKey(), () => now);
    const a = await counter.allocate(10);
    const b = await counter.allocate(1);
    const c = await counter.allocate(5);
    expect(a).toBe(now * 1000 + 1);
    expect(b).toBe(a + 10);
    expect(c).toBe(b + 1);
  });

  it('rejects a count below 1', async () => {
    const counter = new VersionCounter(client(), freshKey());
    await expect(counter.allocate(0)).rejects.toThrow(RangeError);
  });

  it('concurrent allocations from several connections never overlap', async () => {
    const key = freshKey();
    // A still clock: the wall-clock floor cannot jump the counter mid-test, so blocks must tile.
    const now = Date.now();
    const counters = [client(), client(), client()].map((c) => new VersionCounter(c, key, () => now));
    const firsts = await Promise.all(Array.from({ length: 20 }, (_, i) => counters[i % 3]!.allocate(50)));
    const all = new Set<number>();
    for (const first of firsts) for (let v = first; v < first + 50; v++) all.add(v);
    expect(all.size).toBe(1000);
    expect(Math.min(...all)).toBe(now * 1000 + 1);
    // Blocks tile one contiguous range.
    const sorted = [...firsts].sort((x, y) => x - y);
    sorted.forEach((first, i) => {
      if (i > 0) expect(first).toBe(sorted[i - 1]! + 50);
    });
  });

  it('versions are at least wall-clock microseconds', async () => {
    const before = Date.now();
    const v = await new VersionCounter(client(), freshKey()).allocate(1);
    expect(v).toBeGreaterThan(before * 1000);
    expect(v).toBeLessThanOrEqual(Date.now() * 1000 + 1);
  });

  it('never goes down when the clock goes backwards', async () => {
    let now = 1_800_000_000_000;
    const key = freshKey();
    const counter = new VersionCounter(client(), key, () => now);
    const first = await counter.allocate(3);
    now -= 60_000;
    const second = await counter.allocate(1);
    expect(second).toBe(first + 3);
    now -= 3_600_000;
    const third = await new VersionCounter(client(), key, () => now).allocate(2);
    expect(third).toBe(second + 1);
  });

  it('moves up to the clock when the clock is ahead of the counter', async () => {
    let now = 1_700_000_000_000;
    const counter = new VersionCounter(client(), freshKey(), () => now);
    const first = await counter.allocate(1);
    now += 5;
    const second = await counter.allocate(1);
    expect(second).toBe(now * 1000 + 1);
    expect(second).toBeGreaterThan(first);
  });

  it('a lost counter restarts above earlier versions once the clock has moved on', async () => {
    let now = 1_700_000_000_000;
    const redis = client();
    const key = freshKey();
    const counter = new VersionCounter(redis, key, () => now);
    // Up to 1000 versions a millisecond stay below the next millisecond's floor.
    const before = await counter.allocate(500);
    const highest = before + 499;
    await redis.del(key);
    now += 1;
    const after = await counter.allocate(1);
    expect(after).toBeGreaterThan(highest);
    expect(after).toBe(now * 1000 + 1);
  });
});
