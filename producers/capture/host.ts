import { LeaseLostError } from '../../shared/platform/errors';
import type { Logger } from '../../shared/platform/logger';
import { FreshnessCanary } from '../canary';
import { canaryIndex } from '../../shared/core/canary';
import { createChangeSink, type ChangeSink } from '../change-sink';
import { nonEmpty } from '../../shared/platform/config/schema';
import { unfenced } from '../lease';
import type { ReconcileDeps } from '../reconcile';
import { ReconcileRunner, reconcileSettings } from '../reconcile-runner';
import type { CaptureDeps, CaptureMode, CaptureProducer, CapturePlugin } from './types';

/**
 * Runs one capture mode for one tenure and owns what every mode needs around it: the change
 * sink, the reconciler, the reconciliation schedule and the stop order. The order at stop is
 * what makes a hand-over lose nothing: no new reconciliation, the mode stops learning, the
 * reconciliation under way stops at its next page, the sink is flushed, and only then may the
 * mode save what it saves (a checkpoint) or close what it holds.
 */
export class CaptureHost<M extends CaptureMode = CaptureMode> implements CaptureProducer {
  readonly sink: ChangeSink;
  readonly mode: M;
  private readonly reconciler: ReconcileRunner;
  /** Only under a lease: the capturing producer measures, a standby or an unfenced run does not. */
  private readonly canary: FreshnessCanary | undefined;
  private readonly log: Logger;
  private timer: NodeJS.Timeout | undefined;
  private stopping = false;

  constructor(
    private readonly plugin: CapturePlugin<M>,
    private readonly deps: CaptureDeps,
  ) {
    const { config } = deps;
    this.log = deps.logger.child({ component: 'producer', mode: plugin.name, ...plugin.logBindings?.(config) });
    this.sink = createChangeSink(config, deps.queue, deps.queueRedis, this.log, deps.router);
    const reconcileDeps: ReconcileDeps = {
      searchSink: deps.searchSink,
      router: deps.router,
      source: deps.source,
      queueRedis: deps.queueRedis,
      sink: this.sink,
      logger: this.log,
      fence: deps.fence,
    };
    const settings = reconcileSettings(config);
    this.reconciler = new ReconcileRunner(reconcileDeps, settings, this.log);
    this.mode = plugin.create({
      ...deps,
      logger: this.log,
      fence: deps.fence ?? unfenced(deps.queueRedis),
      sink: this.sink,
      requestReconcile: () => this.requestReconcile(),
      reconciler: this.reconciler,
      leased: deps.fence !== undefined,
      reconcileDeps,
      reconcileSettings: settings,
    });
    if (config.producer.canary.enabled && deps.fence !== undefined && plugin.capturesSourceWrites !== false)
      this.canary = new FreshnessCanary({
        source: deps.source,
        db: nonEmpty(config.redis.databases, 'redis.databases')[0],
        searchSink: deps.searchSink,
        queueRedis: deps.queueRedis,
        prefix: config.queue.prefix,
        settings: { ...config.producer.canary, index: canaryIndex(config) },
        logger: this.log,
      });
  }

  /** Full reconciliations the host's reconciler completed. */
  get reconciliations(): number {
    return this.reconciler.completed;
  }

  async start(): Promise<void> {
    await this.mode.start();
    this.canary?.start();
    const every = this.plugin.reconcileEveryMs(this.deps.config);
    if (every > 0) {
      this.timer = setInterval(() => this.requestReconcile(), every);
      this.timer.unref();
    }
  }

  async idle(): Promise<void> {
    await this.mode.idle?.();
    await this.reconciler.idle();
  }

  requestReconcile(): void {
    if (this.stopping) return;
    if (this.mode.requestReconcile) this.mode.requestReconcile();
    else this.reconciler.request();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    if (this.timer) clearInterval(this.timer);
    await this.canary?.stop();
    await this.mode.stop();
    await this.reconciler.stop();
    let leaseLost: LeaseLostError | undefined;
    await this.sink.flush().catch((err: unknown) => {
      // Dropped: the next leader starts from what this tenure saved (reconciling or resuming), so they are covered.
      if (!(err instanceof LeaseLostError)) throw err;
      leaseLost = err;
    });
    await this.mode.close?.({ leaseLost });
  }
}
