import { nonEmpty } from '../../../shared/platform/config/schema';
import type { Logger } from '../../../shared/platform/logger';
import type { CaptureContext, CaptureMode } from '../types';
import { MasterNotifications } from './masters';

/**
 * A FLUSHALL of a Cluster reaches its masters one by one, within milliseconds: one
 * reconciliation after the last of them instead of one per master.
 */
const FLUSH_SETTLE_MS = 250;

/**
 * Keyspace-notification capture: subscribes first, then reconciles (the initial snapshot),
 * so no change falls between the two; reconciles again after every reconnect, after every
 * flush a master announces and on the host's schedule, since pub/sub drops what is published
 * while disconnected and SWAPDB is announced nowhere.
 */
export class NotificationMode implements CaptureMode {
  private readonly masters: MasterNotifications;
  private flushTimer: NodeJS.Timeout | undefined;
  private readonly log: Logger;

  constructor(private readonly ctx: CaptureContext) {
    const { config } = ctx;
    this.log = ctx.logger;
    this.masters = new MasterNotifications({
      source: ctx.source,
      databases: nonEmpty(config.redis.databases, 'redis.databases'),
      sink: ctx.sink,
      logger: this.log,
      configureNotifications: config.producer.configureNotifications,
      refreshMs: config.producer.topologyRefreshMs,
      onGap: () => ctx.requestReconcile(),
      flushProbePrefix: `${config.queue.prefix}:flush-probe:`,
      onFlush: () => this.afterFlush(),
    });
  }

  get gaps(): number {
    return this.masters.gapCount;
  }

  async start(): Promise<void> {
    const { config } = this.ctx;
    await this.masters.start();
    // Pub/sub keeps nothing for us: whatever an earlier tenure (or process) had not enqueued is found by reconciling.
    this.log.info(
      { databases: config.redis.databases, ...(this.ctx.source.isCluster ? { masters: this.masters.masters } : {}) },
      'capturing keyspace notifications; reconciling to cover what came before',
    );
    this.ctx.requestReconcile();
  }

  async stop(): Promise<void> {
    if (this.flushTimer) clearTimeout(this.flushTimer);
    await this.masters.stop();
  }

  /** The flushed keys' documents are deleted by the reconciliation, which finds their keys gone. */
  private afterFlush(): void {
    if (this.flushTimer) return;
    this.flushTimer = setTimeout(() => {
      this.flushTimer = undefined;
      this.ctx.requestReconcile();
    }, FLUSH_SETTLE_MS);
  }
}
