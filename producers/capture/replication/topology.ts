import type { AppConfig } from '../../../shared/platform/config/schema';
import { ConfigError } from '../../../shared/platform/errors';
import type { TopologyIssue } from '../types';

/** A replica follows one master: a Cluster or a Sentinel group has no single one to follow. */
export function replicationConfigIssues(config: AppConfig): TopologyIssue[] {
  if (config.redis.url !== undefined) return [];
  return [
    {
      path: ['producer', 'mode'],
      message: 'replication mode needs a standalone source Redis (redis.url), not a Cluster or Sentinel group',
    },
  ];
}

/** The master to replicate; a configuration that got past the config check always has one. */
export function replicationSource(config: AppConfig): string {
  if (config.redis.url === undefined)
    throw new ConfigError('producer.mode replication needs redis.url', [
      { field: 'producer.mode', reason: 'needs redis.url' },
    ]);
  return config.redis.url;
}
