import { defineCaptureModeConfig, type ModeConfig } from '../config';

/**
 * The notifications mode's part of the configuration. Its settings (`configureNotifications`,
 * `reconcileIntervalMs`) predate the plugins and stay shared producer fields, under the same
 * names as before; it adds no slice of its own.
 */
export const notificationsConfig = defineCaptureModeConfig({
  name: 'notifications',
  source: 'notification',
  summary: 'keyspace notifications (+ reconciliation)',
  fields: {},
});

export type NotificationsAppConfig = ModeConfig<typeof notificationsConfig>;
