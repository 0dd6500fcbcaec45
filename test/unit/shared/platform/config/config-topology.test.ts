import { loadConfig } from '../../../../../shared/platform/config/load';
import { ConfigSchema, type SyncConfig } from '../../../../../producers/capture/registry';
import { ConfigError } from '../../../../../shared/platform/errors';
import { isOwnKey } from '../../../../../shared/core/queue';
import { describeEndpoint, endpointOf } from '../../../../../shared/platform/redis';
import { versionKey } from '../../../../../shared/core/versions';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const ES = { ELASTICSEARCH_URL: 'http://es.example:9200' };

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'res-topology-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function fromYaml(yaml: string, env: NodeJS.ProcessEnv = ES): ReturnType<typeof loadConfig<SyncConfig>> {
  const path = join(dir, `c${Math.random().toString(36).slice(2)}.yml`);
  writeFileSync(path, yaml);
  return loadConfig(ConfigSchema, { config: path }, env);
}

function issuesOf(yaml: string, env: NodeJS.ProcessEnv = ES): { field: string; reason: string }[] {
  try {
    fromYaml(yaml, env);
  } catch (err) {
    if (err instanceof ConfigError) return err.issues.map(({ field, reason }) => ({ field, reason }));
    throw err;
  }
  throw new Error('expected a ConfigError');
}

describe('Redis Cluster configuration', () => {
  const nodes = 'redis:\n  cluster:\n    nodes: ["redis://:pw@10.0.0.1:7000", "redis://10.0.0.2:7000"]\n';

  it('takes seed nodes and shares them with the queue, whose prefix then needs a hash tag', () => {
    expect(issuesOf(nodes)).toEqual([
      {
        field: 'queue.prefix',
        reason: expect.stringContaining(
          'needs a hash tag in its prefix so all its keys share one slot, e.g. "{redis-es-sync}"',
        ),
      },
    ]);
    const { config } = fromYaml(`${nodes}queue:\n  prefix: "{redis-es-sync}"\n`);
    expect(config.redis.cluster?.nodes).toHaveLength(2);
    expect(config.queue.cluster).toEqual(config.redis.cluster);
    expect(config.queue.url).toBeUndefined();
    expect(endpointOf(config.queue)).toEqual({ kind: 'cluster', nodes: config.redis.cluster?.nodes });
    expect(describeEndpoint(endpointOf(config.redis))).toBe('cluster redis://:***@10.0.0.1:7000,redis://10.0.0.2:7000');
  });

  it('keeps a standalone queue apart from a clustered source, with the default prefix', () => {
    const { config } = fromYaml(nodes, { ...ES, QUEUE_REDIS_URL: 'redis://queue.example:6379' });
    expect(config.queue.url).toBe('redis://queue.example:6379');
    expect(config.queue.prefix).toBe('redis-es-sync');
  });

  it('rejects databases other than 0', () => {
    expect(issuesOf(`${nodes}  databases: [0, 1]\nqueue:\n  url: redis://q:6379\n`)).toEqual([
      { field: 'redis.databases', reason: 'a Redis Cluster has only database 0' },
    ]);
  });

  it('rejects a url beside cluster, and names the variable when neither is given', () => {
    expect(issuesOf(`${nodes}queue:\n  url: redis://q:6379\n`, { ...ES, REDIS_URL: 'redis://x:6379' })).toEqual([
      { field: 'redis.cluster', reason: 'give only one of url, cluster or sentinel (got url and cluster)' },
    ]);
    expect(issuesOf('logLevel: info\n')).toContainEqual({
      field: 'redis.url',
      reason: 'is required: set REDIS_URL or --redis-url',
    });
  });
});

describe('Redis Sentinel configuration', () => {
  it('takes sentinels as host:port and the master name', () => {
    const { config } = fromYaml(
      'redis:\n  sentinel:\n    sentinels: ["s1:26379", "s2:26379"]\n    name: mymaster\n    password: secret\n',
    );
    expect(config.redis.sentinel).toEqual({
      sentinels: ['s1:26379', 's2:26379'],
      name: 'mymaster',
      password: 'secret',
      tls: false,
    });
    expect(config.queue.sentinel).toEqual(config.redis.sentinel);
    expect(describeEndpoint(endpointOf(config.redis))).toBe('sentinel mymaster@s1:26379,s2:26379');
  });

  it('names a malformed sentinel address', () => {
    expect(issuesOf('redis:\n  sentinel:\n    sentinels: ["s1"]\n    name: m\n')).toContainEqual({
      field: 'redis.sentinel.sentinels[0]',
      reason: 'must be host:port',
    });
  });
});

describe('a hash-tagged queue prefix', () => {
  it('keeps the version counter and BullMQ keys in one slot and out of capture', () => {
    expect(versionKey('{redis-es-sync}')).toBe('{redis-es-sync}:version');
    expect(isOwnKey('{redis-es-sync}', '{redis-es-sync}:changes:wait')).toBe(true);
    expect(isOwnKey('{redis-es-sync}', 'redis-es-sync:changes:wait')).toBe(false);
    expect(isOwnKey('{redis-es-sync}', 'user:{redis-es-sync}')).toBe(false);
  });
});
