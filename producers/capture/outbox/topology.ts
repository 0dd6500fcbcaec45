import { hostname } from 'node:os';
import { ConfigError, RedisSetupError } from '../../../shared/platform/errors';
import type { KeyRouter } from '../../../shared/core/mapping/router';
import { isOwnKey } from '../../../shared/core/queue';
import type { RedisClient } from '../../../shared/platform/redis';
import type { TopologyIssue } from '../types';
import type { OutboxAppConfig } from './config';

/** The stream, group and consumer this process reads as, with their defaults filled in. */
export function outboxNames(config: OutboxAppConfig): { stream: string; group: string; consumer: string } {
  const settings = config.producer.outbox;
  return {
    stream: settings.stream ?? `${config.queue.prefix}:outbox`,
    group: settings.group,
    consumer: settings.consumer ?? `${hostname()}-${process.pid}`,
  };
}

/** The stream lives on one node, so a Cluster, whose keys spread over masters, is out. */
export function outboxConfigIssues(config: OutboxAppConfig): TopologyIssue[] {
  if (config.redis.cluster === undefined) return [];
  return [
    { path: ['producer', 'mode'], message: 'outbox mode needs a standalone or Sentinel source Redis, not a Cluster' },
  ];
}

/** XAUTOCLAIM, which takes over a dead consumer's entries, came with Redis 6.2. */
export async function checkServer(redis: RedisClient): Promise<void> {
  const info = await redis.info('server');
  const version = /^redis_version:(\d+)\.(\d+)/m.exec(info);
  if (version && (Number(version[1]) < 6 || (Number(version[1]) === 6 && Number(version[2]) < 2))) {
    throw new RedisSetupError(
      `producer.mode outbox needs Redis 6.2 or newer (XAUTOCLAIM); the source Redis is ${version[1]}.${version[2]}`,
    );
  }
}

/** The stream must not be synced as data: verify would flag it and a reconciliation would index it. */
export function checkStreamIsNotData(
  config: OutboxAppConfig,
  router: KeyRouter,
  stream: string,
  streamDb: number,
): void {
  if (isOwnKey(config.queue.prefix, stream) || !router.route(streamDb, stream)) return;
  const reason = `the stream ${stream} would itself be indexed as data: name it under queue.prefix ("${config.queue.prefix}:…", the default is "${config.queue.prefix}:outbox") or add a mapping rule { match: "${stream}", skip: true }`;
  throw new ConfigError(`invalid configuration:\n  - producer.outbox.stream: ${reason}`, [
    { field: 'producer.outbox.stream', reason },
  ]);
}
