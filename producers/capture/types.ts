import type { AppConfig } from '../../shared/platform/config/schema';
import type { LeaseLostError } from '../../shared/platform/errors';
import type { Logger } from '../../shared/platform/logger';
import type { KeyRouter } from '../../shared/core/mapping/router';
import type { SyncQueues } from '../../shared/core/queue';
import type { Sink } from '../../shared/sink/port';
import type { RedisClient, SourceRedis } from '../../shared/platform/redis';
import type { ChangeSink } from '../change-sink';
import type { Fence } from '../lease';
import type { ReconcileDeps } from '../reconcile';
import type { ReconcileSettings } from '../reconcile-runner';
import type { CaptureModeConfig, ModeConfig } from './config';

/** What the service hands the producer of one tenure; `C` is the configuration as the mode reads it. */
export interface CaptureDeps<C extends AppConfig = AppConfig> {
  config: C;
  source: SourceRedis;
  queueRedis: RedisClient;
  queue: SyncQueues;
  /** The search engine (the sink port); `sink` in a mode's deps is the change sink. */
  searchSink: Sink;
  router: KeyRouter;
  logger: Logger;
  /** The lease's fence for position writes; without one (no lease) they are plain writes. */
  fence?: Fence;
}

/** What every capture mode offers the service that runs it (the host, wrapped in the lease). */
export interface CaptureProducer {
  /** Resolves once live capture runs; catch-up work (initial snapshot) may go on in the background. */
  start(): Promise<void>;
  /** Stops capturing and resolves once everything captured so far is in the queue. */
  stop(): Promise<void>;
  /** Resolves when background catch-up work (reconciliation, snapshot) is done. */
  idle(): Promise<void>;
  /** Re-enqueues every key and every document whose key vanished, beside live capture. */
  requestReconcile(): void;
}

/** What the host gives a mode: the tenure's dependencies plus the parts it owns for every mode. */
export interface CaptureContext<C extends AppConfig = AppConfig> extends Omit<CaptureDeps<C>, 'fence'> {
  /** Position writes go through it: the lease's fence, or plain writes without a lease. */
  fence: Fence;
  /** Where the mode hands the keys it learns of; the host flushes it last at stop. */
  sink: ChangeSink;
  /** Asks the host's reconciler for a full pass (one at a time, a request while one runs runs after it). */
  requestReconcile(): void;
  /** The host's reconciler, for a mode that must record that a pass it asked for completed. */
  reconciler: { readonly completed: number; idle(): Promise<void> };
  /** Whether a lease fences this tenure (`fence` is then the lease's, else plain writes). */
  leased: boolean;
  /** For a mode that runs reconciliations itself: the same dependencies and settings the host's reconciler has. */
  reconcileDeps: ReconcileDeps;
  reconcileSettings: ReconcileSettings;
}

/**
 * One way of learning what changed in the source Redis. The host owns everything around it
 * (sink, reconciliation, schedule, stop order); a mode only learns of keys and hands them to
 * the sink.
 */
export interface CaptureMode {
  /** Resolves once live capture runs; catch-up work may go on in the background. */
  start(): Promise<void>;
  /** Stops learning of changes; resolves once what was learnt is in the sink. */
  stop(): Promise<void>;
  /**
   * After the host's final flush (and so after the reconciler stopped): what can be done only
   * once everything captured is in the queue, such as saving a position or closing a reader.
   * `leaseLost` is set when that flush was refused for a lost lease.
   */
  close?(outcome: { leaseLost?: LeaseLostError }): Promise<void>;
  /** Resolves when the mode's own catch-up work is done; the host then waits for its reconciliations. */
  idle?(): Promise<void>;
  /**
   * A mode whose saved position must wait for the reconciliations it asked for (replication's
   * checkpoint) runs them itself; the host's reconciler is then left unused.
   */
  requestReconcile?(): void;
}

/** A configuration problem a mode finds in a parsed configuration (reported like a schema issue). */
export interface TopologyIssue {
  path: (string | number)[];
  message: string;
}

/**
 * A capture mode as the registry lists it: its declaration (name, job source, config slice:
 * `<mode>/config.ts`) and what the host calls. Each call gets the configuration typed with the
 * mode's own slice (`ModeConfig<D>`), so a mode reads its fields, typed, and no other mode's.
 */
export type CapturePlugin<M extends CaptureMode = CaptureMode, D extends CaptureModeConfig = CaptureModeConfig> = D &
  CaptureBehaviour<M, ModeConfig<D>>;

/** What the host and the registry call on a mode. */
export interface CaptureBehaviour<M extends CaptureMode, C extends AppConfig> {
  /** The scheduled full reconciliation's interval under this configuration (0: none). */
  reconcileEveryMs(config: C): number;
  /** Extra bindings on the tenure's log lines (sink and reconciliation included). */
  logBindings?(config: C): Record<string, unknown>;
  /** Sources this mode cannot capture from, found when the configuration is loaded, before anything connects. */
  checkConfig?(config: C): TopologyIssue[];
  /**
   * Whether every producer captures at once under this configuration, with no producer lease
   * (the outbox's shared consumer group): the mode itself then keeps them from losing a change.
   */
  runsWithoutLease?(config: C): boolean;
  /** Whether the mode captures a Redis Cluster source one master at a time (`producer.shardedCapture`). */
  shardsByMaster?: boolean;
  /**
   * False for a mode that does not see writes to the source as such (the outbox sees only what
   * the application adds to it): the freshness canary, which writes a key and waits for it, has
   * nothing to measure there.
   */
  capturesSourceWrites?: boolean;
  create(ctx: CaptureContext<C>): M;
}
