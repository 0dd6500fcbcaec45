import type { ConnectionOptions } from 'node:tls';
import type { Logger } from '../platform/logger';
import { RedisDbPool, type RedisEndpoint, type SourceRedis } from '../platform/redis';
import { ClusterSource } from '../platform/redis-cluster';

/** The source Redis for its configured topology: standalone URL, Sentinel group or Cluster. */
export function createSource(
  endpoint: RedisEndpoint,
  name: string,
  logger?: Logger,
  tls?: ConnectionOptions,
): SourceRedis {
  switch (endpoint.kind) {
    case 'standalone':
      return new RedisDbPool(endpoint.url, name, logger, tls);
    case 'sentinel':
      return new RedisDbPool(endpoint.sentinel, name, logger, tls);
    case 'cluster':
      return new ClusterSource(endpoint.nodes, name, logger, tls);
  }
}
