import { defineCaptureModeConfig, type ModeConfig } from '../config';

/** The replication mode's part of the configuration: no fields of its own, and the `src` of its jobs. */
export const replicationConfig = defineCaptureModeConfig({
  name: 'replication',
  source: 'replication',
  summary: 'the replication protocol (the producer acts as a replica; self-hosted Redis/Valkey only)',
  fields: {},
});

export type ReplicationAppConfig = ModeConfig<typeof replicationConfig>;
