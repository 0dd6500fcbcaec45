import type { Client } from '@elastic/elasticsearch';
import type { AppConfig } from '../shared/platform/config/schema';
import { LeaseLostError } from '../shared/platform/errors';
import type { Logger } from '../shared/platform/logger';
import type { KeyRouter } from '../shared/core/mapping/router';
import type { SyncQueue } from '../shared/core/queue';
import type { RedisClient, SourceRedis } from '../shared/platform/redis';
import { createChangeSink, type ChangeSink } from './change-sink';
import type { Fence } from './lease';
import { MasterNotifications } from './master-notifications';
import { ReconcileRunner, reconcileSettings } from './reconcile-runner';

export interface ProducerDeps {
  config: AppConfig;
  source: SourceRedis;
  queueRedis: RedisClient;
  queue: SyncQueue;
  es: Client;
  router: KeyRouter;
  logger: Logger;
  /** The lease's fence for position writes; without one (no lease) they are plain writes. */
  fence?: Fence;
}

/**
 * A FLUSHALL of a Cluster reaches its masters one by one, within milliseconds: one
 * reconciliation after the last of them instead of one per master.
 */
const FLUSH_SETTLE_MS = 250;

/**
 * Keyspace-notification capture: subscribes first, then reconciles (the initial snapshot),
 * so no change falls between the two; reconciles again after every reconnect, after every
 * flush a master announces and on a schedule, since pub/sub drops what is published while
 * disconnected and SWAPDB is announced nowhere.
 */
export class NotificationProducer {
  readonly sink: ChangeSink;
  private readonly capture: MasterNotifications;
  private readonly reconciler: ReconcileRunner;
  private timer: NodeJS.Timeout | undefined;
  private flushTimer: NodeJS.Timeout | undefined;
  private readonly log: Logger;

  constructor(private readonly deps: ProducerDeps) {
    const { config } = deps;
    this.log = deps.logger.child({ component: 'producer', mode: 'notifications' });
    this.sink = createChangeSink(config, deps.queue, deps.queueRedis, this.log, deps.router);
    this.reconciler = new ReconcileRunner(
      { es: deps.es, router: deps.router, source: deps.source, queueRedis: deps.queueRedis, sink: this.sink, logger: this.log, fence: deps.fence },
      reconcileSettings(config),
      this.log,
    );
    this.capture = new MasterNotifications({
      source: deps.source,
      databases: config.redis.databases,
      sink: this.sink,
      logger: this.log,
      configureNotifications: config.producer.configureNotifications,
      refreshMs: config.producer.topologyRefreshMs,
      onGap: () => this.requestReconcile(),
      flushProbePrefix: `${config.queue.prefix}:flush-probe:`,
      onFlush: () => this.afterFlush(),
    });
  }

  get gaps(): number {
    return this.capture.gapCount;
  }

  /** Full reconciliations completed. */
  get reconciliations(): number {
    return this.reconciler.completed;
  }

  /** Resolves once live capture runs; the initial reconciliation goes on in the background. */
  async start(): Promise<void> {
    const { config } = this.deps;
    await this.capture.start();
    // Pub/sub keeps nothing for us: whatever an earlier tenure (or process) had not enqueued is found by reconciling.
    this.log.info({ databases: config.redis.databases, ...(this.deps.source.isCluster ? { masters: this.capture.masters } : {}) }, 'capturing keyspace notifications; reconciling to cover what came before');
    this.requestReconcile();
    if (config.producer.reconcileIntervalMs > 0) {
      this.timer = setInterval(() => this.requestReconcile(), config.producer.reconcileIntervalMs);
      this.timer.unref();
    }
  }

  /** Resolves when the reconciliation under way (if any) and a requested follow-up are done. */
  idle(): Promise<void> {
    return this.reconciler.idle();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    if (this.flushTimer) clearTimeout(this.flushTimer);
    await this.capture.stop();
    await this.reconciler.stop();
    await this.sink.flush().catch((err: unknown) => {
      // Dropped: the next leader's reconciliation at its start covers them.
      if (!(err instanceof LeaseLostError)) throw err;
    });
  }

  requestReconcile(): void {
    this.reconciler.request();
  }

  /** The flushed keys' documents are deleted by the reconciliation, which finds their keys gone. */
  private afterFlush(): void {
    if (this.flushTimer) return;
    this.flushTimer = setTimeout(() => {
      this.flushTimer = undefined;
      this.requestReconcile();
    }, FLUSH_SETTLE_MS);
  }
}
