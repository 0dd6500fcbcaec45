import type { AppConfig } from '../shared/platform/config/schema';
import { LeaseLostError } from '../shared/platform/errors';
import type { Logger } from '../shared/platform/logger';
import { reconcile, type DeletionGuard, type ReconcileDeps, type ReconcileOptions } from './reconcile';

export type ReconcileSettings = Omit<ReconcileOptions, 'signal' | 'progress'>;

/** The configured guard against mass deletion; `maxShare: 1` turns it off. */
export function deletionGuard(config: AppConfig): DeletionGuard | undefined {
  const { maxShare, minDeletes } = config.producer.deletionGuard;
  return maxShare >= 1 ? undefined : { maxShare, minDeletes };
}

/** What a full reconciliation covers under this configuration. */
export function reconcileSettings(config: AppConfig): ReconcileSettings {
  return {
    databases: config.redis.databases,
    patterns: config.redis.patterns,
    scanCount: config.producer.scanCount,
    batchKeys: config.producer.snapshotBatchKeys,
    prefix: config.queue.prefix,
    guard: deletionGuard(config),
  };
}

/**
 * Runs reconciliations one at a time beside live capture. A request while one runs is
 * remembered and runs after it (the running pass may already have scanned past a key the
 * requester cares about); a failed pass is retried after 5 s, unless it failed because the
 * lease was lost.
 */
export class ReconcileRunner {
  private readonly abort = new AbortController();
  private running: Promise<void> | undefined;
  private again = false;
  completed = 0;

  constructor(
    private readonly deps: ReconcileDeps,
    private readonly settings: ReconcileSettings,
    private readonly log: Logger,
  ) {}

  request(): void {
    if (this.abort.signal.aborted) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.runOnce().finally(() => {
      this.running = undefined;
      if (this.again) {
        this.again = false;
        this.request();
      }
    });
  }

  /** Resolves when the pass under way (if any) and a requested follow-up are done. */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  /** Aborts the pass under way at its next page and resolves when it has returned. */
  async stop(): Promise<void> {
    this.abort.abort();
    await this.idle();
  }

  private async runOnce(): Promise<void> {
    const started = Date.now();
    try {
      const result = await reconcile(this.deps, { ...this.settings, signal: this.abort.signal });
      if (!result.aborted) this.completed++;
      this.log.info({ ...result, ms: Date.now() - started }, 'reconciliation done');
    } catch (err) {
      // The next leader runs its own; this one must enqueue nothing more.
      if (err instanceof LeaseLostError) {
        this.log.warn({ err }, 'reconciliation stopped: the producer lease was lost');
        return;
      }
      this.log.error({ err }, 'reconciliation failed; retrying in 5 s');
      setTimeout(() => this.request(), 5000).unref();
    }
  }
}
