import { Redis } from 'ioredis';
import { ChangeSink } from '../../producers/change-sink';
import { leaseKeys, RedisLease } from '../../producers/lease';
import { fencedQueue } from '../../producers/leased-producer';
import { ConfigSchema } from '../../shared/config/schema';
import { LeaseLostError } from '../../shared/errors';
import { createLogger } from '../../shared/logger';
import { createQueue, unfinishedJobs } from '../../shared/queue';
import { closeRedis, connectRedis } from '../../shared/redis';
import { VersionCounter, versionKey } from '../../shared/versions';
import { startRedis, type RedisServerHandle } from '../support/redis-server';

const PREFIX = 'lease-test';
const keys = leaseKeys(PREFIX);
let server: RedisServerHandle;
let redis: Redis;

beforeAll(async () => {
  server = await startRedis();
  redis = new Redis(server.url);
});

afterAll(async () => {
  redis.disconnect();
  await server.stop();
});

beforeEach(() => redis.flushall());

describe('RedisLease', () => {
  it('lets one holder at a time take it, and numbers every acquisition', async () => {
    const a = new RedisLease(redis, keys, 60_000);
    const b = new RedisLease(redis, keys, 60_000);
    expect(await a.acquire()).toBe(1);
    expect(await b.acquire()).toBeUndefined();
    expect(await redis.get(keys.lease)).toBe(a.token);
    await expect(a.check()).resolves.toBeUndefined();
    await expect(b.check()).rejects.toBeInstanceOf(LeaseLostError);
    expect(await a.renew()).toBe(true);
    expect(await b.renew()).toBe(false);
  });

  it('a holder whose lease expired and was taken cannot renew, check or release it', async () => {
    const a = new RedisLease(redis, keys, 60_000);
    const b = new RedisLease(redis, keys, 60_000);
    await a.acquire();
    await redis.del(keys.lease); // what expiry does
    expect(await b.acquire()).toBe(2);
    await expect(a.check()).rejects.toThrow(/fencing number 1/);
    expect(await a.renew()).toBe(false);
    await a.release();
    expect(await redis.get(keys.lease)).toBe(b.token);
    await expect(b.check()).resolves.toBeUndefined();
  });

  it('a re-acquisition by the same holder after expiry fences its old tenure', async () => {
    const a = new RedisLease(redis, keys, 60_000);
    await a.acquire();
    await redis.del(keys.lease);
    const b = new RedisLease(redis, keys, 60_000);
    await b.acquire();
    await redis.del(keys.lease);
    expect(await a.acquire()).toBe(3);
    await expect(b.check()).rejects.toBeInstanceOf(LeaseLostError);
    await expect(a.check()).resolves.toBeUndefined();
  });

  it('release frees it at once for the next one', async () => {
    const a = new RedisLease(redis, keys, 60_000);
    const b = new RedisLease(redis, keys, 60_000);
    await a.acquire();
    await a.release();
    expect(await redis.exists(keys.lease)).toBe(0);
    expect(await b.acquire()).toBe(2);
  });

  it('sets the TTL it was given and extends it on renewal', async () => {
    const a = new RedisLease(redis, keys, 5000);
    await a.acquire();
    await redis.pexpire(keys.lease, 100);
    await a.renew();
    expect(await redis.pttl(keys.lease)).toBeGreaterThan(1000);
  });
});

describe('a sink enqueueing through a fenced queue', () => {
  it('enqueues while the lease is held and drops its buffer once it is lost', async () => {
    const config = ConfigSchema.parse({
      redis: { url: server.url },
      queue: { url: server.url, prefix: PREFIX },
      elasticsearch: { url: 'http://es.test:9200' },
    });
    const connection = connectRedis(server.url, { name: 'lease-test', forBullmq: true });
    const queue = createQueue(config, connection);
    const lease = new RedisLease(redis, keys, 60_000);
    await lease.acquire();
    const sink = new ChangeSink(
      fencedQueue(queue, () => lease.check()),
      new VersionCounter(redis, versionKey(PREFIX)),
      { prefix: PREFIX, batch: 100, flushMs: 60_000 },
      createLogger('silent'),
    );
    try {
      sink.capture(0, 'a');
      await sink.flush();
      expect(await unfinishedJobs(queue)).toBe(1);

      await redis.del(keys.lease);
      await new RedisLease(redis, keys, 60_000).acquire();
      sink.capture(0, 'b');
      sink.capture(0, 'c');
      await sink.flush();
      expect(sink.buffered).toBe(0);
      expect(await unfinishedJobs(queue)).toBe(1);
      await expect(sink.enqueueKeys(0, ['d'], 'reconcile')).rejects.toBeInstanceOf(LeaseLostError);
    } finally {
      await queue.close();
      await closeRedis(connection);
    }
  });
});
