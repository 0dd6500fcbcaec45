import { Lifecycle, stopAll } from '../../../../shared/platform/lifecycle';
import { createLogger } from '../../../../shared/platform/logger';

const logger = createLogger('silent');

describe('the process lifecycle', () => {
  it('starts in order, stops in reverse, once for every caller', async () => {
    const events: string[] = [];
    const life = new Lifecycle({ logger, stepTimeoutMs: 1000 });
    for (const name of ['a', 'b', 'c']) {
      await life.add({
        name,
        start: async () => void events.push(`start ${name}`),
        stop: async () => void events.push(`stop ${name}`),
      });
    }
    await Promise.all([life.stop(), life.stop()]);
    await life.stop();
    expect(events).toEqual(['start a', 'start b', 'start c', 'stop c', 'stop b', 'stop a']);
  });

  it('stops what had started when a part fails to start, and passes the error on', async () => {
    const events: string[] = [];
    const life = new Lifecycle({ logger, stepTimeoutMs: 1000 });
    await life.add({ name: 'connections', stop: async () => void events.push('stop connections') });
    await life.add({
      name: 'worker',
      start: async () => void events.push('start worker'),
      stop: async () => void events.push('stop worker'),
    });
    const failing = life.add({
      name: 'producer',
      start: () => Promise.reject(new Error('no notifications')),
      stop: async () => void events.push('stop producer'),
    });
    await expect(failing).rejects.toThrow('no notifications');
    expect(events).toEqual(['start worker', 'stop worker', 'stop connections']);
    await expect(life.add({ name: 'late', stop: async () => undefined })).rejects.toThrow(/stopping/);
  });

  it('runs every stop step although one fails and one hangs, within the bounds', async () => {
    const events: string[] = [];
    const started = Date.now();
    await stopAll(
      [
        { name: 'throws', stop: () => Promise.reject(new Error('boom')) },
        { name: 'hangs', stop: () => new Promise<void>(() => undefined) },
        { name: 'last', stop: async () => void events.push('last') },
      ],
      { logger, stepTimeoutMs: 200 },
    );
    expect(events).toEqual(['last']);
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it('skips what is left once the whole deadline has passed', async () => {
    const events: string[] = [];
    await stopAll(
      [
        { name: 'slow', stop: () => new Promise<void>((r) => setTimeout(r, 300)) },
        { name: 'skipped', stop: async () => void events.push('skipped ran') },
      ],
      { logger, stepTimeoutMs: 1000, deadlineMs: 100 },
    );
    expect(events).toEqual([]);
  });
});
