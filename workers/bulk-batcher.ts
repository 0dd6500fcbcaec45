import type { ItemResult, WorkItem } from './bulk-indexer';

export interface BatcherSettings {
  maxDocs: number;
  flushMs: number;
  maxInflight: number;
}

type IndexFn = (items: readonly WorkItem[]) => Promise<ItemResult[]>;

/** One submit's items: answered together, once the last of them has its result. */
interface Submission {
  results: ItemResult[];
  left: number;
  settled: boolean;
  resolve: (r: ItemResult[]) => void;
  reject: (err: unknown) => void;
}

interface Waiting {
  item: WorkItem;
  submission: Submission;
  /** The item's place in its submission's results. */
  at: number;
}

/**
 * Gathers the items of many concurrent jobs into bulk requests: a batch goes out when it
 * reaches maxDocs, or flushMs after its first item, with at most maxInflight batches in
 * flight. While all slots are busy items keep gathering, so batches grow under load.
 */
export class BulkBatcher {
  private waiting: Waiting[] = [];
  private timer: NodeJS.Timeout | undefined;
  private inflight = 0;
  private idleWaiters: (() => void)[] = [];

  constructor(
    private readonly indexFn: IndexFn,
    private readonly settings: BatcherSettings,
  ) {}

  // One promise per submit, not per item: a job's items may be split over batches, and each
  // item's result lands in its place; the submission settles when the last one has.
  submit(items: readonly WorkItem[]): Promise<ItemResult[]> {
    if (items.length === 0) return Promise.resolve([]);
    const promise = new Promise<ItemResult[]>((resolve, reject) => {
      const submission: Submission = {
        results: new Array<ItemResult>(items.length),
        left: items.length,
        settled: false,
        resolve,
        reject,
      };
      items.forEach((item, at) => this.waiting.push({ item, submission, at }));
    });
    this.schedule();
    return promise;
  }

  get pending(): number {
    return this.waiting.length;
  }

  /** Sends what is waiting now and resolves when nothing is waiting or in flight. */
  async drain(): Promise<void> {
    this.flush();
    if (this.waiting.length === 0 && this.inflight === 0) return;
    await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
  }

  private schedule(): void {
    if (this.waiting.length >= this.settings.maxDocs) this.flush();
    else if (!this.timer && this.waiting.length > 0) this.timer = setTimeout(() => this.flush(), this.settings.flushMs);
  }

  private flush(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    while (this.inflight < this.settings.maxInflight && this.waiting.length > 0) {
      const batch = this.waiting.splice(0, this.settings.maxDocs);
      this.inflight++;
      this.indexFn(batch.map((w) => w.item))
        .then(
          (results) =>
            batch.forEach((w, i) => {
              const result = results[i];
              // indexFn answers one result per item; a short answer is a bug there, not a success here.
              if (result === undefined)
                fail(
                  w.submission,
                  new Error(`bulk index returned ${results.length} results for ${batch.length} items`),
                );
              else answer(w, result);
            }),
          (err: unknown) => batch.forEach((w) => fail(w.submission, err)),
        )
        .finally(() => {
          this.inflight--;
          // Whatever gathered while every slot was busy has waited long enough: send it now.
          if (this.waiting.length > 0) this.flush();
          if (this.waiting.length === 0 && this.inflight === 0) this.idleWaiters.splice(0).forEach((r) => r());
        });
    }
  }
}

function answer(w: Waiting, result: ItemResult): void {
  const s = w.submission;
  if (s.settled) return;
  s.results[w.at] = result;
  if (--s.left === 0) {
    s.settled = true;
    s.resolve(s.results);
  }
}

/** The first failure of any of its items fails the submission, as Promise.all of them would. */
function fail(s: Submission, err: unknown): void {
  if (s.settled) return;
  s.settled = true;
  s.reject(err);
}
