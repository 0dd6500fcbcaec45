import type { Client } from '@elastic/elasticsearch';
import type { AppConfig } from '../shared/config/schema';
import type { Logger } from '../shared/logger';
import type { KeyRouter } from '../shared/mapping/router';
import type { SyncQueue } from '../shared/queue';
import type { RedisClient, SourceRedis } from '../shared/redis';
import { createChangeSink, type ChangeSink } from './change-sink';
import { MasterNotifications } from './master-notifications';
import { reconcile } from './reconcile';

export interface ProducerDeps {
  config: AppConfig;
  source: SourceRedis;
  queueRedis: RedisClient;
  queue: SyncQueue;
  es: Client;
  router: KeyRouter;
  logger: Logger;
}

/**
 * Keyspace-notification capture: subscribes first, then reconciles (the initial snapshot),
 * so no change falls between the two; reconciles again after every reconnect and on a
 * schedule, since pub/sub drops what is published while disconnected and FLUSHDB/SWAPDB
 * publish nothing.
 */
export class NotificationProducer {
  readonly sink: ChangeSink;
  private readonly capture: MasterNotifications;
  private readonly abort = new AbortController();
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private readonly log: Logger;
  reconciliations = 0;

  constructor(private readonly deps: ProducerDeps) {
    const { config } = deps;
    this.log = deps.logger.child({ component: 'producer', mode: 'notifications' });
    this.sink = createChangeSink(config, deps.queue, deps.queueRedis, this.log);
    this.capture = new MasterNotifications({
      source: deps.source,
      databases: config.redis.databases,
      sink: this.sink,
      logger: this.log,
      configureNotifications: config.producer.configureNotifications,
      refreshMs: config.producer.topologyRefreshMs,
      onGap: () => this.requestReconcile(),
    });
  }

  get gaps(): number {
    return this.capture.gapCount;
  }

  /** Resolves once live capture runs; the initial reconciliation goes on in the background. */
  async start(): Promise<void> {
    const { config } = this.deps;
    await this.capture.start();
    this.log.info({ databases: config.redis.databases, ...(this.deps.source.isCluster ? { masters: this.capture.masters } : {}) }, 'capturing keyspace notifications');
    this.requestReconcile();
    if (config.producer.reconcileIntervalMs > 0) {
      this.timer = setInterval(() => this.requestReconcile(), config.producer.reconcileIntervalMs);
      this.timer.unref();
    }
  }

  /** Resolves when the reconciliation under way (if any) and a requested follow-up are done. */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.abort.abort();
    await this.capture.stop();
    await this.idle();
    await this.sink.flush();
  }

  requestReconcile(): void {
    if (this.abort.signal.aborted) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.runReconcile().finally(() => {
      this.running = undefined;
      if (this.again) {
        this.again = false;
        this.requestReconcile();
      }
    });
  }

  private async runReconcile(): Promise<void> {
    const { config } = this.deps;
    const started = Date.now();
    try {
      const result = await reconcile(
        { es: this.deps.es, router: this.deps.router, source: this.deps.source, queueRedis: this.deps.queueRedis, sink: this.sink, logger: this.log },
        {
          databases: config.redis.databases,
          patterns: config.redis.patterns,
          scanCount: config.producer.scanCount,
          batchKeys: config.producer.snapshotBatchKeys,
          prefix: config.queue.prefix,
          signal: this.abort.signal,
        },
      );
      if (!result.aborted) this.reconciliations++;
      this.log.info({ ...result, ms: Date.now() - started, gaps: this.capture.gapCount }, 'reconciliation done');
    } catch (err) {
      this.log.error({ err: (err as Error).message }, 'reconciliation failed; retrying in 5 s');
      setTimeout(() => this.requestReconcile(), 5000).unref();
    }
  }
}
