import { Redis } from 'ioredis';
import { RedisSetupError } from '../../../../../shared/platform/errors';
import { createLogger } from '../../../../../shared/platform/logger';
import {
  ensureNotifyFlags,
  missingNotifyFlags,
  REQUIRED_NOTIFY_FLAGS,
} from '../../../../../producers/capture/notifications/notify-flags';
import { startRedis, type RedisServerHandle } from '../../../../support/redis-server';

describe('missingNotifyFlags', () => {
  it.each([
    ['', Array.from('Eg$lshzxet')],
    ['AKE', []],
    ['KEA', []],
    ['AE', []],
    ['EA', []],
    ['Ex', Array.from('g$lshzet')],
    ['KA', ['E']],
    ['Kg$lshzxet', ['E']],
    ['Eg$lshzxet', []],
    ['E$h', Array.from('glszxet')],
  ])('%j → %j', (current, missing) => {
    expect(missingNotifyFlags(current)).toEqual(missing);
  });

  it('requires keyevent notifications for every class of change', () => {
    expect(REQUIRED_NOTIFY_FLAGS).toBe('Eg$lshzxet');
  });
});

describe('ensureNotifyFlags (real redis-server)', () => {
  let server: RedisServerHandle;
  let redis: Redis;
  const logger = createLogger('silent');

  const current = async (): Promise<string> => (await redis.config('GET', 'notify-keyspace-events'))[1] ?? '';

  beforeAll(async () => {
    server = await startRedis();
    redis = new Redis(server.url);
  });

  afterAll(async () => {
    await redis?.quit();
    await server?.stop();
  });

  it('throws RedisSetupError naming the missing flags when not allowed to configure', async () => {
    await redis.config('SET', 'notify-keyspace-events', 'Ex');
    const err = await ensureNotifyFlags(redis, false, logger).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(RedisSetupError);
    expect((err as Error).message).toContain('missing flags "g$lshzet"');
    expect((err as Error).message).toContain('notify-keyspace-events is "');
    expect(missingNotifyFlags(await current())).toEqual(Array.from('g$lshzet'));
  });

  it('throws with every flag named when notifications are off', async () => {
    await redis.config('SET', 'notify-keyspace-events', '');
    await expect(ensureNotifyFlags(redis, false, logger)).rejects.toThrow('missing flags "Eg$lshzxet"');
  });

  it('sets the missing flags when allowed to', async () => {
    await redis.config('SET', 'notify-keyspace-events', 'Kx');
    await ensureNotifyFlags(redis, true, logger);
    const after = await current();
    expect(missingNotifyFlags(after)).toEqual([]);
    // Flags already set stay set.
    expect(after).toContain('K');
    // Idempotent: nothing left to do, no error.
    await expect(ensureNotifyFlags(redis, false, logger)).resolves.toBeUndefined();
  });

  it('does nothing when the flags are already there', async () => {
    await redis.config('SET', 'notify-keyspace-events', 'KEA');
    await expect(ensureNotifyFlags(redis, false, logger)).resolves.toBeUndefined();
    expect(missingNotifyFlags(await current())).toEqual([]);
  });
});
