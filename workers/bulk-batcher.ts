import type { ItemResult, WorkItem } from './bulk-indexer';

export interface BatcherSettings {
  maxDocs: number;
  flushMs: number;
  maxInflight: number;
}

type IndexFn = (items: readonly WorkItem[]) => Promise<ItemResult[]>;

interface Waiting {
  item: WorkItem;
  resolve: (r: ItemResult) => void;
  reject: (err: unknown) => void;
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

  submit(items: readonly WorkItem[]): Promise<ItemResult[]> {
    const promises = items.map(
      (item) => new Promise<ItemResult>((resolve, reject) => this.waiting.push({ item, resolve, reject })),
    );
    this.schedule();
    return Promise.all(promises);
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
                w.reject(new Error(`bulk index returned ${results.length} results for ${batch.length} items`));
              else w.resolve(result);
            }),
          (err: unknown) => batch.forEach((w) => w.reject(err)),
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
