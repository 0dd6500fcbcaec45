import type { CapturePlugin } from '../types';
import { NotificationMode } from './mode';

/** Keyspace notifications plus reconciliation: works on any Redis, managed clouds included. */
export const notifications: CapturePlugin<NotificationMode> = {
  name: 'notifications',
  reconcileEveryMs: (config) => config.producer.reconcileIntervalMs,
  create: (ctx) => new NotificationMode(ctx),
};
