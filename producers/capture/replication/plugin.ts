import type { CapturePlugin } from '../types';
import { replicationConfig } from './config';
import { ReplicationMode } from './mode';
import { replicationConfigIssues } from './topology';

/** The replication protocol: the producer is a replica and sees every write, flushes included. */
export const replication: CapturePlugin<ReplicationMode, typeof replicationConfig> = {
  ...replicationConfig,
  // The master's stream announces flushes and a resync reconciles: nothing to schedule.
  reconcileEveryMs: () => 0,
  checkConfig: replicationConfigIssues,
  create: (ctx) => new ReplicationMode(ctx),
};
