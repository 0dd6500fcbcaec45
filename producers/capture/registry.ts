import type { AppConfig } from '../../shared/platform/config/schema';
import { CaptureHost } from './host';
import { notifications } from './notifications/plugin';
import { outbox } from './outbox/plugin';
import { replication } from './replication/plugin';
import type { CaptureDeps, CaptureModeName, CapturePlugin, TopologyIssue } from './types';

/**
 * Every capture mode, the only place that names them all. Keyed by `producer.mode`'s values,
 * so a mode the schema allows but nobody registered fails to compile.
 */
const MODES: Readonly<Record<CaptureModeName, CapturePlugin>> = {
  notifications,
  outbox,
  replication,
};

/** The capture for `producer.mode`, run by a host of its own. */
export function createCapture(deps: CaptureDeps): CaptureHost {
  return new CaptureHost(MODES[deps.config.producer.mode], deps);
}

/** What the configured mode finds wrong with the configured source (before anything connects). */
export function captureConfigIssues(config: AppConfig): TopologyIssue[] {
  return MODES[config.producer.mode].checkConfig?.(config) ?? [];
}
