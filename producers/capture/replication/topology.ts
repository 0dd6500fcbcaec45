import type { AppConfig } from '../../../shared/platform/config/schema';
import { ConfigError } from '../../../shared/platform/errors';
import { nodeUrl } from '../../../shared/platform/redis-cluster';
import type { TopologyIssue } from '../types';

/**
 * A replica follows one master: a standalone source is that master, a Cluster source gets a
 * replica link per master. A Sentinel group's master moves without a replication history this
 * mode could follow from outside the group, so it is refused.
 */
export function replicationConfigIssues(config: AppConfig): TopologyIssue[] {
  if (config.redis.url !== undefined || config.redis.cluster !== undefined) return [];
  return [
    {
      path: ['producer', 'mode'],
      message:
        'replication mode needs a standalone source Redis (redis.url) or a Redis Cluster (redis.cluster), not a Sentinel group; use producer.mode notifications or outbox there',
    },
  ];
}

/**
 * How to reach a master to replicate: the standalone source's URL, or for a Cluster master
 * (`host:port` from CLUSTER NODES) the first seed's URL with that address, so credentials and
 * scheme are the seed's.
 */
export function replicationUrl(config: AppConfig, clusterNode?: string): string {
  if (clusterNode !== undefined && config.redis.cluster !== undefined) {
    const [seed] = config.redis.cluster.nodes;
    if (seed !== undefined) return nodeUrl(seed, clusterNode);
  }
  if (config.redis.url === undefined)
    throw new ConfigError('producer.mode replication needs redis.url or redis.cluster', [
      { field: 'producer.mode', reason: 'needs redis.url or redis.cluster' },
    ]);
  return config.redis.url;
}
