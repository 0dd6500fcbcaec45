import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { RedisClient } from '../shared/platform/redis';
import { LeaseLostError } from '../shared/platform/errors';

// Take the lease only when nobody holds it; every acquisition gets the next fencing number,
// so a leader that was paused past its lease can tell it has been replaced.
const ACQUIRE_LUA = `
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return redis.call('INCR', KEYS[2])
end
return false
`;

// Compare-and-extend: only the holder's token may extend it.
const RENEW_LUA = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
`;

// Still the holder, and no acquisition happened since ours.
const CHECK_LUA = `
if redis.call('GET', KEYS[1]) == ARGV[1] and redis.call('GET', KEYS[2]) == ARGV[2] then return 1 end
return 0
`;

// A position write (HSET of KEYS[3]) that happens only while ARGV[1]/ARGV[2] is still the
// latest holder: checked and written in one script, so no takeover can fall between the two.
const FENCED_HSET_LUA = `
if redis.call('GET', KEYS[1]) == ARGV[1] and redis.call('GET', KEYS[2]) == ARGV[2] then
  redis.call('HSET', KEYS[3], unpack(ARGV, 3))
  return 1
end
return 0
`;

const RELEASE_LUA = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
`;

type LeaseRedis = RedisClient & {
  resEsLeaseAcquire(lease: string, fence: string, token: string, ttlMs: number): Promise<number | null>;
  resEsLeaseRenew(lease: string, token: string, ttlMs: number): Promise<number>;
  resEsLeaseCheck(lease: string, fence: string, token: string, fenceValue: string): Promise<number>;
  resEsLeaseRelease(lease: string, token: string): Promise<number>;
  resEsFencedHset(
    lease: string,
    fence: string,
    key: string,
    token: string,
    fenceValue: string,
    ...fieldsAndValues: string[]
  ): Promise<number>;
};

/**
 * What a tenure writes its positions through (replication checkpoint, snapshot cursors): a
 * write is refused with LeaseLostError once this producer is not the latest lease holder.
 */
export interface Fence {
  /** The fencing number this tenure holds; undefined when unfenced or no longer held. */
  readonly fence: number | undefined;
  /** Throws LeaseLostError unless this is still the latest holder. */
  check(): Promise<void>;
  /** HSET, atomically conditional on the lease (one script in the queue Redis, where the lease lives). */
  hset(key: string, fields: Readonly<Record<string, string>>): Promise<void>;
}

/** For runs without a lease (the snapshot command, tests that drive a producer directly). */
export function unfenced(redis: RedisClient): Fence {
  return {
    fence: undefined,
    check: () => Promise.resolve(),
    async hset(key, fields) {
      await redis.hset(key, fields);
    },
  };
}

/**
 * Whether the queue Redis keeps what it acknowledged across a restart (`appendonly yes`);
 * undefined when CONFIG GET is not allowed (managed services often refuse it).
 */
export async function appendOnly(redis: RedisClient): Promise<boolean | undefined> {
  try {
    const reply = await redis.config('GET', 'appendonly');
    const value = Array.isArray(reply) ? (reply as unknown[])[1] : undefined;
    return typeof value === 'string' ? value === 'yes' : undefined;
  } catch {
    return undefined;
  }
}

/** A name for this process in leases and in the producer registry: host, pid and a random part. */
export function producerName(): string {
  return `${hostname()}:${process.pid}:${randomBytes(6).toString('hex')}`;
}

export interface LeaseKeys {
  /** Holds the current holder's token (`GET` it to see who leads). */
  lease: string;
  /** The fencing counter: the latest holder's number. */
  fence: string;
}

export function leaseKeys(prefix: string, name = 'producer'): LeaseKeys {
  return { lease: `${prefix}:lease:${name}`, fence: `${prefix}:lease:${name}:fence` };
}

/**
 * A lease in Redis with a fencing number: SET NX PX with a random token, extended only by
 * the token's owner, and a counter incremented on every acquisition. `check()` asks Redis
 * whether this holder is still the latest one, which is what guards each enqueue; `hset()`
 * is a position write under the same condition.
 */
export class RedisLease implements Fence {
  /** This process's name in the lease; each tenure's token adds a random part of its own. */
  readonly holder: string;
  private readonly redis: LeaseRedis;
  private fenceValue: number | undefined;
  // New on every acquisition: a queue Redis that lost the fencing counter (restarted without
  // persistence) hands out old numbers again, and an old tenure of this process must still fail its checks.
  private tenureToken: string;

  constructor(
    redis: RedisClient,
    private readonly keys: LeaseKeys,
    private readonly ttlMs: number,
    /** Shared by the shard leases of one producer, so a lease's value names the producer holding it. */
    holder: string = producerName(),
  ) {
    this.holder = holder;
    this.tenureToken = holder;
    this.redis = redis as LeaseRedis;
    if (typeof this.redis.resEsLeaseAcquire !== 'function') {
      redis.defineCommand('resEsLeaseAcquire', { numberOfKeys: 2, lua: ACQUIRE_LUA });
      redis.defineCommand('resEsLeaseRenew', { numberOfKeys: 1, lua: RENEW_LUA });
      redis.defineCommand('resEsLeaseCheck', { numberOfKeys: 2, lua: CHECK_LUA });
      redis.defineCommand('resEsLeaseRelease', { numberOfKeys: 1, lua: RELEASE_LUA });
      redis.defineCommand('resEsFencedHset', { numberOfKeys: 3, lua: FENCED_HSET_LUA });
    }
  }

  /** The token of the current (or last) tenure: what `GET <lease>` shows while it leads. */
  get token(): string {
    return this.tenureToken;
  }

  /** The fencing number of the current tenure, or undefined when not held. */
  get fence(): number | undefined {
    return this.fenceValue;
  }

  /** Takes the lease when it is free; returns the new fencing number, or undefined. */
  async acquire(): Promise<number | undefined> {
    const token = `${this.holder}:${randomBytes(4).toString('hex')}`;
    const got = await this.redis.resEsLeaseAcquire(this.keys.lease, this.keys.fence, token, this.ttlMs);
    if (got === null) return undefined;
    this.tenureToken = token;
    this.fenceValue = got;
    return this.fenceValue;
  }

  /** Extends the lease; false when it was lost (expired, or taken by another). */
  async renew(): Promise<boolean> {
    if (this.fenceValue === undefined) return false;
    const ok = (await this.redis.resEsLeaseRenew(this.keys.lease, this.token, this.ttlMs)) === 1;
    if (!ok) this.fenceValue = undefined;
    return ok;
  }

  /** Throws LeaseLostError unless this is still the latest holder. */
  async check(): Promise<void> {
    const held = this.fenceValue;
    if (held === undefined) throw new LeaseLostError('producer lease not held');
    const ok = (await this.redis.resEsLeaseCheck(this.keys.lease, this.keys.fence, this.token, String(held))) === 1;
    if (!ok) {
      if (this.fenceValue === held) this.fenceValue = undefined;
      throw new LeaseLostError(`producer lease lost (fencing number ${held} is no longer the latest)`);
    }
  }

  /** HSET key fields, only while this is still the latest holder; else LeaseLostError and nothing written. */
  async hset(key: string, fields: Readonly<Record<string, string>>): Promise<void> {
    const held = this.fenceValue;
    if (held === undefined) throw new LeaseLostError('producer lease not held');
    const flat = Object.entries(fields).flat();
    const ok =
      (await this.redis.resEsFencedHset(this.keys.lease, this.keys.fence, key, this.token, String(held), ...flat)) ===
      1;
    if (!ok) {
      if (this.fenceValue === held) this.fenceValue = undefined;
      throw new LeaseLostError(
        `producer lease lost (fencing number ${held} is no longer the latest): ${key} not written`,
      );
    }
  }

  /**
   * Whether the queue Redis keeps what it acknowledged across a restart (`appendonly yes`);
   * undefined when CONFIG GET is not allowed (managed services often refuse it).
   */
  async appendOnly(): Promise<boolean | undefined> {
    return appendOnly(this.redis);
  }

  /** Gives the lease up at once, so a standby need not wait for it to expire. */
  async release(): Promise<void> {
    if (this.fenceValue === undefined) return;
    this.fenceValue = undefined;
    await this.redis.resEsLeaseRelease(this.keys.lease, this.token);
  }

  /** Forgets the tenure locally (after renewals failed for longer than the TTL). */
  forget(): void {
    this.fenceValue = undefined;
  }
}

/** The lease of one capture shard (a Cluster master, by its node ID) and its own fencing counter. */
export function shardLeaseKeys(prefix: string, shard: string): LeaseKeys {
  return leaseKeys(prefix, `shard:${shard}`);
}

// Drops the members whose heartbeat is older than their TTL, renews ARGV[1]'s and returns the
// live ones. Times are the queue Redis's own clock, so the producers' clocks need not agree.
const BEAT_LUA = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
return redis.call('ZRANGE', KEYS[1], 0, -1)
`;

type RegistryRedis = RedisClient & {
  resEsRegistryBeat(registry: string, member: string, ttlMs: number): Promise<string[]>;
};

/**
 * The producers that share a sharded capture: a sorted set in the queue Redis, member = the
 * producer, score = when its heartbeat runs out (the queue Redis's clock). A producer that
 * stops beating (dead, paused, cut off) leaves the set `ttlMs` after its last beat, just as
 * its shard leases, renewed in the same tick, run out.
 */
export class ProducerRegistry {
  private readonly redis: RegistryRedis;

  constructor(
    redis: RedisClient,
    readonly key: string,
    readonly member: string,
    private readonly ttlMs: number,
  ) {
    this.redis = redis as RegistryRedis;
    if (typeof this.redis.resEsRegistryBeat !== 'function') {
      redis.defineCommand('resEsRegistryBeat', { numberOfKeys: 1, lua: BEAT_LUA });
    }
  }

  /** Renews this producer's heartbeat; returns every live producer, this one included. */
  async beat(): Promise<string[]> {
    return this.redis.resEsRegistryBeat(this.key, this.member, this.ttlMs);
  }

  /** Leaves at once (a graceful stop), so the others count one producer fewer without waiting. */
  async leave(): Promise<void> {
    await this.redis.zrem(this.key, this.member);
  }
}

export function producerRegistryKey(prefix: string): string {
  return `${prefix}:producers`;
}
