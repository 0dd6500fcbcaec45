import type { z } from 'zod';
import { composeConfigSchema } from './config';
import { CaptureHost } from './host';
import { notifications } from './notifications/plugin';
import { outbox } from './outbox/plugin';
import { replication } from './replication/plugin';
import type { CaptureDeps, CapturePlugin, TopologyIssue } from './types';

/**
 * Every capture mode, the only place that names them all: the first is `producer.mode`'s
 * default. Adding a mode is its folder and one entry here.
 */
export const CAPTURE_MODES = [notifications, outbox, replication] as const;

/** The full configuration schema: the platform's sections with every mode's name and config slice. */
export const ConfigSchema = composeConfigSchema(CAPTURE_MODES);

/** The configuration as the process runs with it (what `loadConfig(ConfigSchema, …)` returns). */
export type SyncConfig = z.output<typeof ConfigSchema>;
/** What a configuration file, or a test, may give. */
export type ConfigInput = z.input<typeof ConfigSchema>;
/** The name of a capture mode, as `producer.mode` spells it. */
export type CaptureModeName = SyncConfig['producer']['mode'];

/** The `src` every mode's live-change jobs carry, beside the shared passes' (`PassSource`). */
export const CAPTURE_SOURCES: readonly string[] = CAPTURE_MODES.map((m) => m.source);

/** The configuration is the registry's full one, so each mode gets the slice its type promises. */
function pluginFor(config: SyncConfig): CapturePlugin {
  const plugin: CapturePlugin | undefined = CAPTURE_MODES.find((m) => m.name === config.producer.mode);
  if (plugin === undefined) throw new Error(`no capture mode ${config.producer.mode} is registered`);
  return plugin;
}

/** The capture for `producer.mode`, run by a host of its own. */
export function createCapture(deps: CaptureDeps<SyncConfig>): CaptureHost {
  return new CaptureHost(pluginFor(deps.config), deps);
}

/** What the configured mode finds wrong with the configured source (before anything connects). */
export function captureConfigIssues(config: SyncConfig): TopologyIssue[] {
  const plugin = pluginFor(config);
  const issues = plugin.checkConfig?.(config) ?? [];
  if (config.producer.shardedCapture && plugin.shardsByMaster !== true)
    issues.push({
      path: ['producer', 'shardedCapture'],
      message: `the ${plugin.name} mode does not capture one master at a time; its scale-out is in docs/capture-modes.md#scaling-out`,
    });
  return issues;
}

/** Whether the configured mode runs in every producer at once, without the producer lease. */
export function captureRunsWithoutLease(config: SyncConfig): boolean {
  return pluginFor(config).runsWithoutLease?.(config) ?? false;
}

/** Whether the configured mode can shard a Cluster source's capture by master. */
export function captureShardsByMaster(config: SyncConfig): boolean {
  return pluginFor(config).shardsByMaster === true;
}
