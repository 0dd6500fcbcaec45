import { Writable } from 'node:stream';
import { createLogger } from '../../../shared/platform/logger';
import { createProgress } from '../../../cli/progress';
import { waitUntilDrained, type SyncQueue } from '../../../shared/core/queue';

function capture(): { logger: ReturnType<typeof createLogger>; lines: () => Record<string, unknown>[] } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      chunks.push(chunk.toString());
      cb();
    },
  });
  return {
    logger: createLogger('info', stream),
    lines: () =>
      chunks
        .join('')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

/** A queue whose unfinished jobs follow `counts`, one value per poll (the last one repeats). */
function fakeQueue(counts: number[]): SyncQueue {
  let i = 0;
  const fake = { getJobCounts: async () => ({ waiting: counts[Math.min(i++, counts.length - 1)]! }) };
  return fake as unknown as SyncQueue;
}

describe('the drain progress of --wait', () => {
  it('reports jobs drained of the total seen, with an ETA, as log lines off a terminal', async () => {
    const { logger, lines } = capture();
    const progress = createProgress('snapshot: queue drain (jobs)', logger, { tty: false, logEveryMs: 5 });
    // 10 jobs, 2 more enqueued meanwhile (total 12), drained in steps.
    await waitUntilDrained(fakeQueue([10, 8, 10, 6, 6, 3, 0]), { progress, everyMs: 10 });
    progress.stop();
    const all = lines();
    const last = all[all.length - 1]!;
    expect(last).toMatchObject({ msg: 'snapshot: queue drain (jobs) finished', done: 12, total: 12 });
    const withEta = all.filter(
      (l) => l.msg === 'snapshot: queue drain (jobs) in progress' && typeof l.etaSeconds === 'number',
    );
    expect(withEta.length).toBeGreaterThan(0);
  });

  it('warns when nothing drains: no worker is running', async () => {
    const { logger, lines } = capture();
    const drained = waitUntilDrained(fakeQueue([5, 5, 5, 5, 5, 5, 5, 0]), { logger, everyMs: 10, stallWarnMs: 20 });
    await drained;
    expect(lines().some((l) => String(l.msg).includes('is a worker running'))).toBe(true);
  });
});
