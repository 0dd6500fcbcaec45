import type { ItemResult, WorkItem } from '../../../workers/bulk-indexer';
import { BulkBatcher, type BatcherSettings } from '../../../workers/bulk-batcher';

interface Call {
  items: WorkItem[];
  resolve: (results?: ItemResult[]) => void;
  reject: (err: unknown) => void;
}

/** An index function whose calls stay open until the test settles them. */
function controlledIndex(): {
  fn: (items: readonly WorkItem[]) => Promise<ItemResult[]>;
  calls: Call[];
  maxConcurrent: () => number;
} {
  const calls: Call[] = [];
  let open = 0;
  let max = 0;
  const fn = (items: readonly WorkItem[]): Promise<ItemResult[]> => {
    open++;
    max = Math.max(max, open);
    return new Promise<ItemResult[]>((resolve, reject) => {
      calls.push({
        items: [...items],
        // By default each item's result echoes its key, so routing can be checked.
        resolve: (results) => resolve(results ?? items.map((i) => ({ ok: false, reason: `${i.db}/${i.key}` }))),
        reject,
      });
    }).finally(() => {
      open--;
    });
  };
  return { fn, calls, maxConcurrent: () => max };
}

const items = (prefix: string, n: number, db = 0): WorkItem[] =>
  Array.from({ length: n }, (_, i) => ({ db, key: `${prefix}${i}` }));
const echo = (list: readonly WorkItem[]): ItemResult[] => list.map((i) => ({ ok: false, reason: `${i.db}/${i.key}` }));

/** Lets pending promise callbacks run. */
const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

/** Fake timers that leave setImmediate real, so tick() still lets promise callbacks run. */
function useFakeTimers(): void {
  jest.useFakeTimers({ doNotFake: ['setImmediate', 'nextTick', 'queueMicrotask'] });
}

function settings(s: Partial<BatcherSettings>): BatcherSettings {
  return { maxDocs: 100, flushMs: 1000, maxInflight: 1, ...s };
}

describe('BulkBatcher', () => {
  afterEach(() => {
    jest.useRealTimers();
  });

  it('flushes as soon as maxDocs items are waiting, without waiting for flushMs', async () => {
    useFakeTimers();
    const index = controlledIndex();
    const batcher = new BulkBatcher(index.fn, settings({ maxDocs: 3, flushMs: 60_000, maxInflight: 2 }));
    const p1 = batcher.submit(items('a', 2));
    expect(index.calls).toHaveLength(0);
    const p2 = batcher.submit(items('b', 1));
    expect(index.calls).toHaveLength(1);
    expect(index.calls[0]!.items.map((i) => i.key)).toEqual(['a0', 'a1', 'b0']);
    expect(batcher.pending).toBe(0);
    index.calls[0]!.resolve();
    await expect(p1).resolves.toEqual(echo(items('a', 2)));
    await expect(p2).resolves.toEqual(echo(items('b', 1)));
  });

  it('one submit larger than maxDocs is split into batches of maxDocs', async () => {
    const index = controlledIndex();
    const batcher = new BulkBatcher(index.fn, settings({ maxDocs: 4, maxInflight: 5 }));
    const p = batcher.submit(items('k', 10));
    expect(index.calls.map((c) => c.items.length)).toEqual([4, 4, 2]);
    index.calls.forEach((c) => c.resolve());
    await expect(p).resolves.toEqual(echo(items('k', 10)));
  });

  it('flushes a partial batch flushMs after its first item', async () => {
    useFakeTimers();
    const index = controlledIndex();
    const batcher = new BulkBatcher(index.fn, settings({ maxDocs: 100, flushMs: 50 }));
    const p = batcher.submit(items('a', 1));
    jest.advanceTimersByTime(30);
    batcher.submit(items('b', 1)).catch(() => undefined);
    jest.advanceTimersByTime(19);
    expect(index.calls).toHaveLength(0);
    expect(batcher.pending).toBe(2);
    // The timer started with the first item; the second one does not push it back.
    jest.advanceTimersByTime(1);
    expect(index.calls).toHaveLength(1);
    expect(index.calls[0]!.items.map((i) => i.key)).toEqual(['a0', 'b0']);
    index.calls[0]!.resolve();
    await expect(p).resolves.toEqual(echo(items('a', 1)));
  });

  it('flushes by time with real timers too', async () => {
    const batcher = new BulkBatcher(async (list) => echo(list), settings({ maxDocs: 100, flushMs: 5 }));
    const started = Date.now();
    await expect(batcher.submit(items('x', 3))).resolves.toEqual(echo(items('x', 3)));
    expect(Date.now() - started).toBeGreaterThanOrEqual(4);
  });

  it('keeps at most maxInflight index calls; what gathers meanwhile goes out together when a slot frees', async () => {
    useFakeTimers();
    const index = controlledIndex();
    const batcher = new BulkBatcher(index.fn, settings({ maxDocs: 2, flushMs: 10, maxInflight: 2 }));
    const first = batcher.submit(items('a', 2));
    const second = batcher.submit(items('b', 2));
    expect(index.calls).toHaveLength(2);

    // Both slots busy: these gather, even past maxDocs and past flushMs.
    const late = [batcher.submit(items('c', 1)), batcher.submit(items('d', 1)), batcher.submit(items('e', 1))];
    jest.advanceTimersByTime(100);
    expect(index.calls).toHaveLength(2);
    expect(batcher.pending).toBe(3);

    index.calls[0]!.resolve();
    await first;
    await tick();
    // One slot freed: the next batch (up to maxDocs) goes out at once.
    expect(index.calls).toHaveLength(3);
    expect(index.calls[2]!.items.map((i) => i.key)).toEqual(['c0', 'd0']);
    expect(batcher.pending).toBe(1);

    index.calls[1]!.resolve();
    await second;
    await tick();
    expect(index.calls).toHaveLength(4);
    expect(index.calls[3]!.items.map((i) => i.key)).toEqual(['e0']);
    index.calls[2]!.resolve();
    index.calls[3]!.resolve();
    await expect(Promise.all(late)).resolves.toEqual([echo(items('c', 1)), echo(items('d', 1)), echo(items('e', 1))]);
    expect(index.maxConcurrent()).toBe(2);
  });

  it('items that gathered while the only slot was busy go out as one batch', async () => {
    useFakeTimers();
    const index = controlledIndex();
    const batcher = new BulkBatcher(index.fn, settings({ maxDocs: 10, flushMs: 5, maxInflight: 1 }));
    const busy = batcher.submit(items('a', 10));
    const singles = ['x', 'y', 'z'].map((key) => batcher.submit([{ db: 0, key }]));
    jest.advanceTimersByTime(50);
    expect(index.calls).toHaveLength(1);
    index.calls[0]!.resolve();
    await busy;
    await tick();
    expect(index.calls).toHaveLength(2);
    expect(index.calls[1]!.items.map((i) => i.key)).toEqual(['x', 'y', 'z']);
    index.calls[1]!.resolve();
    await expect(Promise.all(singles)).resolves.toEqual(
      [['x'], ['y'], ['z']].map((k) => echo([{ db: 0, key: k[0]! }])),
    );
  });

  it('never exceeds maxInflight under many concurrent submitters', async () => {
    let open = 0;
    let max = 0;
    let calls = 0;
    const batcher = new BulkBatcher(
      async (list) => {
        calls++;
        open++;
        max = Math.max(max, open);
        await new Promise((r) => setTimeout(r, 2));
        open--;
        return echo(list);
      },
      settings({ maxDocs: 5, flushMs: 1, maxInflight: 3 }),
    );
    const submits = Array.from({ length: 60 }, (_, i) => batcher.submit([{ db: i % 2, key: `k${i}` }]));
    const results = await Promise.all(submits);
    results.forEach((r, i) => expect(r).toEqual([{ ok: false, reason: `${i % 2}/k${i}` }]));
    expect(max).toBeLessThanOrEqual(3);
    expect(max).toBeGreaterThan(1);
    expect(calls).toBeGreaterThanOrEqual(12);
  });

  it('routes each result to the submitter of that item', async () => {
    const index = controlledIndex();
    const batcher = new BulkBatcher(index.fn, settings({ maxDocs: 5 }));
    const a = batcher.submit([{ db: 0, key: 'x' }]);
    const b = batcher.submit([
      { db: 1, key: 'y' },
      { db: 2, key: 'z' },
    ]);
    const c = batcher.submit([
      { db: 3, key: 'w' },
      { db: 0, key: 'v' },
    ]);
    expect(index.calls).toHaveLength(1);
    index.calls[0]!.resolve([
      { ok: true, result: 'indexed' },
      { ok: true, result: 'deleted' },
      { ok: false, reason: 'mapper' },
      { ok: true, result: 'already-newer' },
      { ok: true, result: 'skipped' },
    ]);
    await expect(a).resolves.toEqual([{ ok: true, result: 'indexed' }]);
    await expect(b).resolves.toEqual([
      { ok: true, result: 'deleted' },
      { ok: false, reason: 'mapper' },
    ]);
    await expect(c).resolves.toEqual([
      { ok: true, result: 'already-newer' },
      { ok: true, result: 'skipped' },
    ]);
  });

  it('an index rejection rejects only the submitters of that batch', async () => {
    const index = controlledIndex();
    const batcher = new BulkBatcher(index.fn, settings({ maxDocs: 2, maxInflight: 2 }));
    const a = batcher.submit(items('a', 2));
    const b = batcher.submit(items('b', 2));
    expect(index.calls).toHaveLength(2);
    index.calls[0]!.reject(new Error('es exploded'));
    index.calls[1]!.resolve();
    await expect(a).rejects.toThrow('es exploded');
    await expect(b).resolves.toEqual(echo(items('b', 2)));

    // The batcher keeps working after a failed batch.
    const c = batcher.submit(items('c', 2));
    expect(index.calls).toHaveLength(3);
    index.calls[2]!.resolve();
    await expect(c).resolves.toEqual(echo(items('c', 2)));
  });

  it('drain() sends what waits and resolves only when nothing is in flight', async () => {
    const index = controlledIndex();
    const batcher = new BulkBatcher(index.fn, settings({ maxDocs: 2, flushMs: 60_000, maxInflight: 1 }));
    const inflight = batcher.submit(items('a', 2));
    const waiting = batcher.submit(items('b', 1));
    expect(index.calls).toHaveLength(1);

    let drained = false;
    const drain = batcher.drain().then(() => {
      drained = true;
    });
    await tick();
    expect(drained).toBe(false);

    index.calls[0]!.resolve();
    await inflight;
    await tick();
    expect(index.calls).toHaveLength(2);
    expect(drained).toBe(false);

    index.calls[1]!.resolve();
    await drain;
    expect(drained).toBe(true);
    await expect(waiting).resolves.toEqual(echo(items('b', 1)));
    expect(batcher.pending).toBe(0);
  });

  it('drain() on an idle batcher resolves at once', async () => {
    const index = controlledIndex();
    const batcher = new BulkBatcher(index.fn, settings({}));
    await expect(batcher.drain()).resolves.toBeUndefined();
    expect(index.calls).toHaveLength(0);
  });

  it('drain() flushes a waiting partial batch immediately', async () => {
    useFakeTimers();
    const index = controlledIndex();
    const batcher = new BulkBatcher(index.fn, settings({ maxDocs: 100, flushMs: 60_000 }));
    const p = batcher.submit(items('a', 3));
    const drain = batcher.drain();
    expect(index.calls).toHaveLength(1);
    index.calls[0]!.resolve();
    await drain;
    await expect(p).resolves.toEqual(echo(items('a', 3)));
  });
});
