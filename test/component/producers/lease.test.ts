import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { ChangeSink } from '../../../producers/change-sink';
import { leaseKeys, RedisLease } from '../../../producers/lease';
import type { CaptureProducer } from '../../../producers/capture/types';
import { LeasedProducer } from '../../../producers/leased-producer';
import { ConfigSchema } from '../../../producers/capture/registry';
import { LeaseLostError } from '../../../shared/platform/errors';
import { createLogger } from '../../../shared/platform/logger';
import { captureModeSource, SyncQueues, unfinishedJobs } from '../../../shared/core/queue';
import { closeRedis, connectRedis } from '../../../shared/platform/redis';
import { VersionCounter, versionKey } from '../../../shared/core/versions';
import { startRedis, type RedisServerHandle } from '../../support/redis-server';

/** The source of live changes in these tests; the sink carries whatever source a mode names. */
const LIVE = captureModeSource('notification');

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

  it('tells whether the queue Redis keeps what it acknowledged across a restart (appendonly)', async () => {
    expect(await new RedisLease(redis, keys, 60_000).appendOnly()).toBe(false);
    const dir = await mkdtemp(join(tmpdir(), 'res-lease-aof-'));
    const persistent = await startRedis({ args: ['--dir', dir, '--appendonly', 'yes'] });
    const client = new Redis(persistent.url);
    try {
      expect(await new RedisLease(client, keys, 60_000).appendOnly()).toBe(true);
    } finally {
      client.disconnect();
      await persistent.stop();
      await rm(dir, { recursive: true, force: true });
    }
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

  it('writes a position only while the lease is held under the same fence', async () => {
    const a = new RedisLease(redis, keys, 60_000);
    await a.acquire();
    await a.hset('pos', { offset: '10', db: '0' });
    expect(await redis.hgetall('pos')).toEqual({ offset: '10', db: '0' });
    // Expired and taken over: the old holder's write is refused and writes nothing.
    await redis.del(keys.lease);
    const b = new RedisLease(redis, keys, 60_000);
    await b.acquire();
    await expect(a.hset('pos', { offset: '99' })).rejects.toBeInstanceOf(LeaseLostError);
    expect(await redis.hget('pos', 'offset')).toBe('10');
    await expect(a.hset('pos', { offset: '98' })).rejects.toThrow(/not held/);
    await b.hset('pos', { offset: '20' });
    expect(await redis.hget('pos', 'offset')).toBe('20');
    // Expired and not taken by anyone: refused too (the next holder may be about to read it).
    await redis.del(keys.lease);
    await expect(b.hset('pos', { offset: '30' })).rejects.toBeInstanceOf(LeaseLostError);
    expect(await redis.hget('pos', 'offset')).toBe('20');
  });

  it('an old tenure stays fenced off even when the queue Redis lost the fencing counter', async () => {
    const a = new RedisLease(redis, keys, 60_000);
    expect(await a.acquire()).toBe(1);
    const firstTenure = a.token;
    // A queue Redis restarted without persistence: lease and counter gone, numbering starts over.
    await redis.flushall();
    const b = new RedisLease(redis, keys, 60_000);
    expect(await b.acquire()).toBe(1);
    await expect(a.check()).rejects.toBeInstanceOf(LeaseLostError);
    await redis.del(keys.lease);
    await redis.set(keys.fence, '0');
    // The same process leads again with the same number: its token is new.
    expect(await a.acquire()).toBe(1);
    expect(a.token).not.toBe(firstTenure);
    expect(a.token.startsWith(a.holder)).toBe(true);
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
  it('enqueues while the lease is held; once it is lost, flushes reject and nothing more is enqueued', async () => {
    const config = ConfigSchema.parse({
      redis: { url: server.url },
      queue: { url: server.url, prefix: PREFIX },
      elasticsearch: { url: 'http://es.test:9200' },
    });
    const connection = connectRedis(server.url, { name: 'lease-test', forBullmq: true });
    const queue = SyncQueues.create(config, connection);
    const lease = new RedisLease(redis, keys, 60_000);
    await lease.acquire();
    const sink = new ChangeSink(
      queue.fenced(() => lease.check()),
      new VersionCounter(redis, versionKey(PREFIX)),
      { prefix: PREFIX, batch: 100, flushMs: 60_000, hotKeyWindowMs: 0 },
      createLogger('silent'),
    );
    try {
      sink.capture(0, 'a', LIVE);
      await sink.flush();
      expect(await unfinishedJobs(queue)).toBe(1);

      await redis.del(keys.lease);
      await new RedisLease(redis, keys, 60_000).acquire();
      sink.capture(0, 'b', LIVE);
      sink.capture(0, 'c', LIVE);
      // A flush that dropped changes never looks done: the caller must not ack or checkpoint past them.
      await expect(sink.flush()).rejects.toBeInstanceOf(LeaseLostError);
      expect(sink.buffered).toBe(0);
      expect(sink.leaseLost).toBe(true);
      expect(await unfinishedJobs(queue)).toBe(1);
      await expect(sink.enqueueKeys(0, ['d'], 'reconcile')).rejects.toBeInstanceOf(LeaseLostError);
      // Spent for good: later captures are ignored and every flush keeps failing.
      sink.capture(0, 'e', LIVE);
      expect(sink.buffered).toBe(0);
      await expect(sink.flush()).rejects.toBeInstanceOf(LeaseLostError);
      expect(await unfinishedJobs(queue)).toBe(1);
    } finally {
      await queue.close();
      await closeRedis(connection);
    }
  });
});

/** A capture producer that only records what was done to it. */
class FakeCapture implements CaptureProducer {
  started = 0;
  stopped = 0;
  constructor(
    private readonly failStart?: Error,
    private readonly startMs = 0,
  ) {}
  async start(): Promise<void> {
    this.started++;
    if (this.startMs > 0) await new Promise((r) => setTimeout(r, this.startMs));
    if (this.failStart) throw this.failStart;
  }
  async stop(): Promise<void> {
    this.stopped++;
  }
  async idle(): Promise<void> {
    // nothing in flight in this double
  }
  requestReconcile(): void {
    // the lease tests do not look at reconciliation
  }
}

async function until(what: string, check: () => boolean | Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('LeasedProducer', () => {
  const logger = createLogger('silent');
  const leased = (captures: FakeCapture[], failStart?: Error, startMs = 0): LeasedProducer =>
    new LeasedProducer({
      lease: new RedisLease(redis, keys, 1000),
      create: () => {
        const c = new FakeCapture(failStart, startMs);
        captures.push(c);
        return c;
      },
      ttlMs: 1000,
      renewMs: 50,
      logger,
    });

  it('one leads, the other stands by; a leader whose lease is taken steps down; a stop hands over at once', async () => {
    const aCaptures: FakeCapture[] = [];
    const bCaptures: FakeCapture[] = [];
    const a = leased(aCaptures);
    const b = leased(bCaptures);
    try {
      await a.start();
      await b.start();
      expect([a.isLeader, b.isLeader]).toEqual([true, false]);
      expect(bCaptures).toHaveLength(0);

      // The lease expires under A (as when A was paused) and someone else takes it.
      await redis.del(keys.lease);
      const thief = new RedisLease(redis, keys, 60_000);
      expect(await thief.acquire()).toBe(2);
      await until('A to step down', () => !a.isLeader);
      expect(aCaptures[0]!.stopped).toBe(1);
      expect(b.isLeader).toBe(false);

      await thief.release();
      await until('one of them to lead', () => a.isLeader || b.isLeader);
      const [leader, standby] = a.isLeader ? [a, b] : [b, a];
      expect(standby.isLeader).toBe(false);
      expect(await redis.get(keys.fence)).toBe('3');

      await leader.stop();
      await until('the standby to take over', () => standby.isLeader);
      expect(await redis.get(keys.fence)).toBe('4');
      expect(aCaptures.length + bCaptures.length).toBe(3);
      expect([...aCaptures, ...bCaptures].filter((c) => c.stopped === 1)).toHaveLength(2);
    } finally {
      await a.stop();
      await b.stop();
    }
    expect(await redis.exists(keys.lease)).toBe(0);
  });

  it('keeps the lease through a start that takes several TTLs (a PSYNC waiting, a large RDB)', async () => {
    const captures: FakeCapture[] = [];
    const slow = leased(captures, undefined, 3500);
    const rival = leased([]);
    try {
      const starting = slow.start();
      await until('the lease taken', async () => (await redis.exists(keys.lease)) === 1);
      await rival.start();
      await starting;
      expect(slow.isLeader).toBe(true);
      expect(rival.isLeader).toBe(false);
      // Never expired meanwhile: nobody else acquired it.
      expect(await redis.get(keys.fence)).toBe('1');
      expect(captures[0]!.stopped).toBe(0);
    } finally {
      await slow.stop();
      await rival.stop();
    }
  });

  it('a lease lost while the start is under way stops that capture once its start settled', async () => {
    const captures: FakeCapture[] = [];
    const p = leased(captures, undefined, 1500);
    try {
      const starting = p.start();
      await until('the lease taken', async () => (await redis.exists(keys.lease)) === 1);
      await redis.del(keys.lease);
      await new RedisLease(redis, keys, 60_000).acquire();
      await starting;
      await until('the capture stopped', () => captures[0]!.stopped === 1);
      expect(p.isLeader).toBe(false);
    } finally {
      await p.stop();
    }
  });

  it('a capture producer that cannot start fails the start and frees the lease', async () => {
    const captures: FakeCapture[] = [];
    const p = leased(captures, new Error('notifications are off'));
    await expect(p.start()).rejects.toThrow('notifications are off');
    expect(captures[0]!.stopped).toBe(1);
    expect(await redis.exists(keys.lease)).toBe(0);
  });
});
