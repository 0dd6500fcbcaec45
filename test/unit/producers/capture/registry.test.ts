import {
  captureConfigIssues,
  captureRunsWithoutLease,
  captureShardsByMaster,
  ConfigSchema,
  type ConfigInput,
} from '../../../../producers/capture/registry';

const base = { queue: { url: 'redis://queue.example:6379' }, elasticsearch: { url: 'http://es.example:9200' } };
const issues = (input: Partial<ConfigInput>): string[] =>
  captureConfigIssues(ConfigSchema.parse({ ...base, ...input })).map((i) => `${i.path.join('.')}: ${i.message}`);

describe("the capture modes' own configuration checks", () => {
  it('accept every mode on a standalone source', () => {
    for (const mode of ConfigSchema.shape.producer.unwrap().shape.mode.unwrap().options) {
      expect(issues({ redis: { url: 'redis://source.example:6379' }, producer: { mode } })).toEqual([]);
    }
  });

  it('refuse a replica of a Sentinel group and an outbox on a Cluster, and accept replication of a Cluster', () => {
    const sentinel = { sentinel: { name: 'mymaster', sentinels: ['s1.example:26379'] } };
    expect(issues({ redis: sentinel, producer: { mode: 'replication' } })).toEqual([
      'producer.mode: replication mode needs a standalone source Redis (redis.url) or a Redis Cluster (redis.cluster), not a Sentinel group; use producer.mode notifications or outbox there',
    ]);
    expect(issues({ redis: sentinel, producer: { mode: 'outbox' } })).toEqual([]);
    const cluster = { cluster: { nodes: ['redis://10.0.0.1:7000'] } };
    expect(
      issues({
        redis: cluster,
        queue: { url: 'redis://queue.example:6379', prefix: '{res}' },
        producer: { mode: 'outbox' },
      }),
    ).toEqual(['producer.mode: outbox mode needs a standalone or Sentinel source Redis, not a Cluster']);
    expect(issues({ redis: cluster, producer: { mode: 'replication', shardedCapture: true } })).toEqual([]);
  });

  it('shard by master only in a mode that can, and run without the lease only where the mode says so', () => {
    const source = { redis: { url: 'redis://source.example:6379' } };
    for (const mode of ['notifications', 'replication'] as const)
      expect(issues({ ...source, producer: { mode, shardedCapture: true } })).toEqual([]);
    expect(issues({ ...source, producer: { mode: 'outbox', shardedCapture: true } })).toEqual([
      'producer.shardedCapture: the outbox mode does not capture one master at a time; its scale-out is in docs/capture-modes.md#scaling-out',
    ]);
    const parse = (producer: ConfigInput['producer']) => ConfigSchema.parse({ ...base, ...source, producer });
    expect(captureShardsByMaster(parse({ mode: 'notifications' }))).toBe(true);
    expect(captureShardsByMaster(parse({ mode: 'replication' }))).toBe(true);
    expect(captureShardsByMaster(parse({ mode: 'outbox' }))).toBe(false);
    expect(captureRunsWithoutLease(parse({ mode: 'outbox' }))).toBe(false);
    expect(captureRunsWithoutLease(parse({ mode: 'outbox', outbox: { shareGroup: true } }))).toBe(true);
    expect(captureRunsWithoutLease(parse({ mode: 'notifications' }))).toBe(false);
  });
});
