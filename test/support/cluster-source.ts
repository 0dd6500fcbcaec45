import type { ConfigInput } from '../../producers/capture/registry';
import { esUrl, uniqueIndex } from './elasticsearch';
import type { TestPipeline } from './pipeline';
import { startRedisCluster, type RedisClusterHandle } from './redis-cluster';
import { startRedis, type RedisServerHandle } from './redis-server';

export interface ClusterSource {
  cluster: RedisClusterHandle;
  queue: RedisServerHandle;
  /** A configuration reading this source, queueing on this queue Redis, indexing into a fresh index named after `name`. */
  input(name: string, producer: NonNullable<ConfigInput['producer']>): ConfigInput;
}

/**
 * For one suite: a 3-master Cluster source without replicas and a standalone queue Redis,
 * started before its tests; after them the suite's pipeline (as `pipeline()` then names it)
 * stops first, then both servers. The returned getter is valid inside the tests.
 */
export function useClusterSource(pipeline: () => TestPipeline | undefined): () => ClusterSource {
  let source: ClusterSource | undefined;
  beforeAll(async () => {
    const [cluster, queue] = await Promise.all([startRedisCluster({ masters: 3, replicasPerMaster: 0 }), startRedis()]);
    source = {
      cluster,
      queue,
      input: (name, producer) => ({
        logLevel: (process.env.TEST_LOG_LEVEL as ConfigInput['logLevel']) ?? 'silent',
        redis: { cluster: { nodes: cluster.urls.slice(0, 2) } },
        queue: { url: queue.url },
        elasticsearch: { url: esUrl() },
        mapping: { defaultIndex: uniqueIndex(name) },
        producer,
      }),
    };
  });
  afterAll(async () => {
    await pipeline()?.stop();
    await Promise.all([source?.cluster.stop(), source?.queue.stop()]);
  });
  return () => {
    if (!source) throw new Error('the Cluster source is started in beforeAll');
    return source;
  };
}
