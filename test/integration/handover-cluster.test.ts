import { Cluster, Redis } from 'ioredis';
import type { ConfigInput } from '../../producers/capture/registry';
import { esUrl, uniqueIndex } from '../support/elasticsearch';
import {
  burstWithPausedLeader,
  expectNothingMissing,
  fenceNumber,
  killAll,
  LEASE,
  racingProducers,
  steppedDown,
  type Cli,
} from '../support/handover';
import { startPipeline, waitFor, type TestPipeline } from '../support/pipeline';
import { startRedisCluster, type RedisClusterHandle } from '../support/redis-cluster';
import { startRedis, type RedisServerHandle } from '../support/redis-server';

/**
 * The notifications mode on a Redis Cluster source (the only mode that supports one: outbox and
 * replication read a single server, and the configuration refuses them with a Cluster), through
 * a hand-over in the middle of a write burst: two producers race for the lease, the leader is
 * frozen past its TTL while writes go on across every master.
 */
describe('hand-over in notifications mode on a Redis Cluster source', () => {
  let cluster: RedisClusterHandle;
  let queue: RedisServerHandle;
  let redis: Cluster;
  let queueRedis: Redis;
  let worker: TestPipeline | undefined;
  let input: ConfigInput;
  const children: Cli[] = [];

  beforeAll(async () => {
    // cluster-node-timeout at Redis's default (15 s): nothing here fails over, and the rule is default settings.
    [cluster, queue] = await Promise.all([
      startRedisCluster({ masters: 3, replicasPerMaster: 0, nodeTimeoutMs: 15000 }),
      startRedis(),
    ]);
    redis = new Cluster(cluster.urls.map((url) => ({ host: '127.0.0.1', port: Number(new URL(url).port) })));
    queueRedis = new Redis(queue.url);
    input = {
      logLevel: 'silent',
      redis: { cluster: { nodes: cluster.urls.slice(0, 2) } },
      queue: { url: queue.url },
      elasticsearch: { url: esUrl() },
      mapping: { defaultIndex: uniqueIndex('handover-cluster') },
      producer: { ...LEASE, reconcileIntervalMs: 0, deletionGuard: { maxShare: 1 }, topologyRefreshMs: 500 },
      worker: { lockDurationMs: 4000, stalledIntervalMs: 1000, retryBaseMs: 50, retryMaxMs: 1000 },
    };
  });

  afterAll(async () => {
    await killAll(children);
    await worker?.stop();
    redis?.disconnect();
    queueRedis?.disconnect();
    await Promise.all([cluster?.stop(), queue?.stop()]);
  });

  /** Keys spread over every master's slots: a hash, a string, every 7th round a delete. */
  const round = (i: number): Promise<unknown> =>
    Promise.all([
      redis.hset(`user:${i % 300}`, { n: String(i) }),
      redis.set(`seq:${i % 3000}`, String(i)),
      i % 7 === 0 ? redis.del(`user:${(i * 13) % 300}`) : undefined,
    ]);

  it('a leader frozen past its TTL mid-burst hands over without losing a change', async () => {
    worker = await startPipeline(input, { producer: false, worker: true });
    const [leader, standby] = await racingProducers(input, children);
    expect(await fenceNumber(queueRedis)).toBe(1);
    expect(leader.output()).toContain('capturing keyspace notifications; reconciling to cover what came before');

    await burstWithPausedLeader({ rounds: 3000, pauseAt: 1000, round, leader, standby });
    expect(await fenceNumber(queueRedis)).toBe(2);
    // The new leader subscribed on every master and reconciled what the old one may have dropped.
    expect(standby.output()).toContain('capturing keyspace notifications; reconciling to cover what came before');
    await waitFor('the old leader to step down', async () => steppedDown(leader), Boolean, 30000);
    expect(leader.exitCode).toBeNull();

    await expectNothingMissing(worker);
    expect(await fenceNumber(queueRedis)).toBe(2);
  });
});
