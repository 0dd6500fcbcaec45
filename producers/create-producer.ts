import { OutboxProducer } from './outbox';
import { NotificationProducer, type ProducerDeps } from './producer';
import { ReplicationProducer } from './replication/producer';

/** What every capture mode offers the service that runs it. */
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

/** The producer for `producer.mode`. */
export function createProducer(deps: ProducerDeps): CaptureProducer {
  switch (deps.config.producer.mode) {
    case 'notifications':
      return new NotificationProducer(deps);
    case 'outbox':
      return new OutboxProducer(deps);
    case 'replication':
      return new ReplicationProducer(deps);
  }
}
