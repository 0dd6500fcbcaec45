import type { CapturePlugin } from '../types';
import { notificationsConfig } from './config';
import { NotificationMode } from './mode';

/** Keyspace notifications plus reconciliation: works on any Redis, managed clouds included. */
export const notifications: CapturePlugin<NotificationMode, typeof notificationsConfig> = {
  ...notificationsConfig,
  reconcileEveryMs: (config) => config.producer.reconcileIntervalMs,
  // Notifications are per node: each master's subscription and SCAN stand alone.
  shardsByMaster: true,
  create: (ctx) => new NotificationMode(ctx),
};
