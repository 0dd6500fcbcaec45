import type { CapturePlugin } from '../types';
import { outboxConfig } from './config';
import { OutboxMode } from './mode';
import { outboxConfigIssues, outboxNames } from './topology';

/** A Redis Streams outbox the application writes beside its data: at-least-once, no gap across restarts. */
export const outbox: CapturePlugin<OutboxMode, typeof outboxConfig> = {
  ...outboxConfig,
  reconcileEveryMs: (config) => config.producer.outbox.reconcileIntervalMs,
  logBindings: (config) => outboxNames(config),
  checkConfig: outboxConfigIssues,
  runsWithoutLease: (config) => config.producer.outbox.shareGroup,
  capturesSourceWrites: false,
  create: (ctx) => new OutboxMode(ctx),
};
