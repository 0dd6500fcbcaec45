import {
  cachedMirrorTargets,
  REBUILD_STATE_SETTLE_MS,
  REBUILD_STATE_TTL_MS,
  type RebuildState,
} from '../../../../shared/core/rebuild-state';

const rebuilding: RebuildState = {
  startedAt: 0,
  phase: 'snapshot',
  targets: [{ index: 'redis', from: 'redis-g1', to: 'redis-g2' }],
  done: 0,
  total: 0,
  keep: false,
  graceMs: 0,
};

/** A rebuild state "in Redis" that the test changes, the reads it answered, and a clock it moves. */
function fixture() {
  const f = {
    state: undefined as RebuildState | undefined,
    fail: false,
    reads: 0,
    clock: 0,
  };
  const mirrors = cachedMirrorTargets(
    () => {
      f.reads++;
      return f.fail ? Promise.reject(new Error('connection lost')) : Promise.resolve(f.state);
    },
    1000,
    () => f.clock,
  );
  return { f, mirrors };
}

describe('cachedMirrorTargets', () => {
  test('the rebuild waits longer than a worker acts on what it read', () => {
    expect(REBUILD_STATE_SETTLE_MS).toBeGreaterThan(REBUILD_STATE_TTL_MS);
  });

  test('one read answers every bulk within the TTL; the first call after it reads again', async () => {
    const { f, mirrors } = fixture();
    expect((await mirrors()).size).toBe(0);
    f.state = rebuilding;
    f.clock = 999;
    expect((await mirrors()).size).toBe(0);
    expect(f.reads).toBe(1);
    f.clock = 1000;
    expect(await mirrors()).toEqual(new Map([['redis', 'redis-g2']]));
    expect(f.reads).toBe(2);
  });

  test('the TTL counts from when the read was asked, and bulks asking meanwhile share it', async () => {
    const { f, mirrors } = fixture();
    const first = mirrors();
    f.clock = 500;
    const second = mirrors();
    expect(await second).toBe(await first);
    expect(f.reads).toBe(1);
    f.clock = 1000;
    await mirrors();
    expect(f.reads).toBe(2);
  });

  test('a failed read is not kept: the next call reads again', async () => {
    const { f, mirrors } = fixture();
    f.fail = true;
    await expect(mirrors()).rejects.toThrow('connection lost');
    f.fail = false;
    f.state = rebuilding;
    expect((await mirrors()).get('redis')).toBe('redis-g2');
    expect(f.reads).toBe(2);
  });

  test('after the swap (grace) nothing is mirrored', async () => {
    const { f, mirrors } = fixture();
    f.state = { ...rebuilding, phase: 'grace' };
    expect((await mirrors()).size).toBe(0);
  });
});
