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
  // A replica link is per master: a shard's tenure runs its master's link under the shard's lease.
  shardsByMaster: true,
  create: (ctx) => new ReplicationMode(ctx),
};
