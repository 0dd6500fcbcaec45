import { Cluster, Redis } from 'ioredis';
import type { AppContext } from '../../cli/context';
import { keyFromBytes } from '../../shared/core/bytes';
import type { ConfigInput } from '../../producers/capture/registry';
import { EMPTY_KEY, byteCases, writeCases, type ByteCase } from '../support/byte-cases';
import { esUrl, uniqueIndex } from '../support/elasticsearch';
import { STREAM, startOutboxServers } from '../support/outbox';
import {
  getDoc,
  startPipeline,
  testConfigInput,
  verifyNow,
  waitFor,
  waitInSync,
  type TestPipeline,
  type TestServers,
} from '../support/pipeline';
import { startRedisCluster, type RedisClusterHandle } from '../support/redis-cluster';
import { replicationInput, replicationServers } from '../support/replication';
import { testEs } from '../support/raw-es';

/**
 * Every capture mode hands the worker the exact key bytes, so every kind of key is indexed
 * exactly: verify (its own byte reads, the document decoded back) finds nothing out of sync,
 * and does find a document someone corrupted.
 */
const MAX_DOC = 64 * 1024;

async function expectInSyncThenCorruptionCaught(ctx: AppContext, db: number, grown: string): Promise<void> {
  const report = await waitInSync(ctx, 90000);
  expect(report.refused).toEqual([grown]);
  expect(report.checked).toBeGreaterThanOrEqual(2 * byteCases('').length + 1);
  const key = Buffer.from('live:str:split');
  const { index, id } = ctx.router.route(db, keyFromBytes(key))!;
  const good = (await getDoc(ctx, index, id))!;
  // What a text-only read would have indexed.
  await testEs().index({ index, id, document: { ...good, value: 'h\uFFFDXllo' } });
  const caught = await verifyNow(ctx);
  await testEs().index({ index, id, document: good });
  const name = ctx.config.redis.databases.length > 1 ? `${db}:live:str:split` : 'live:str:split';
  expect(caught.stale).toEqual([name]);
}

/** A value that outgrows maxDocumentBytes after it was indexed: its document becomes a stub. */
async function grow(
  redis: Redis | Cluster,
  ctx: AppContext,
  db: number,
  after?: (key: Buffer) => Promise<unknown>,
): Promise<void> {
  await redis.set('live:grow', 'small');
  await after?.(Buffer.from('live:grow'));
  const { index, id } = ctx.router.route(db, 'live:grow')!;
  await waitFor(
    'grow indexed',
    () => getDoc(ctx, index, id),
    (d) => d?.value === 'small',
    30000,
  );
  await redis.set('live:grow', 'x'.repeat(MAX_DOC + 1));
  await after?.(Buffer.from('live:grow'));
  await waitFor(
    'its stub',
    () => getDoc(ctx, index, id),
    (d) => typeof d?.refused === 'string' && d.value === undefined,
    30000,
  );
}

describe('outbox mode', () => {
  let servers: TestServers;
  let redis: Redis;
  let pipeline: TestPipeline | undefined;

  beforeAll(async () => {
    servers = await startOutboxServers('bytes-outbox');
    redis = new Redis(servers.source.url);
  });

  afterAll(async () => {
    await pipeline?.stop();
    redis.disconnect();
    await servers.stop();
  });

  it('carries binary key names through the stream and indexes every kind of key exactly', async () => {
    // Before the group exists: the reconciliation a new group starts with indexes these.
    await EMPTY_KEY.write(redis);
    await writeCases(redis, byteCases('pre:'));
    const input = testConfigInput(servers, { worker: { maxDocumentBytes: MAX_DOC } });
    pipeline = await startPipeline({ ...input, producer: { ...input.producer, mode: 'outbox' } });
    const announce = (key: Buffer): Promise<unknown> => redis.xadd(STREAM, '*', 'key', key);
    await writeCases(redis, byteCases('live:'), announce);
    await grow(redis, pipeline.ctx, 0, announce);
    await expectInSyncThenCorruptionCaught(pipeline.ctx, 0, 'live:grow');
  });
});

describe('replication mode', () => {
  let servers: TestServers;
  let redis: Redis;
  let pipeline: TestPipeline | undefined;

  beforeAll(async () => {
    servers = await replicationServers('bytes-repl');
    redis = new Redis(servers.source.url);
  });

  afterAll(async () => {
    await pipeline?.stop();
    redis.disconnect();
    await servers.stop();
  });

  it('decodes every kind of key from the RDB and the command stream exactly, then follows FLUSHDB', async () => {
    await EMPTY_KEY.write(redis);
    await writeCases(redis, byteCases('pre:'));
    const input = replicationInput(servers, { worker: { maxDocumentBytes: MAX_DOC } });
    pipeline = await startPipeline(input);
    await writeCases(redis, byteCases('live:'));
    await grow(redis, pipeline.ctx, 0);
    await expectInSyncThenCorruptionCaught(pipeline.ctx, 0, '0:live:grow');

    await redis.flushdb();
    const report = await waitFor(
      'the flushed documents to go',
      () => verifyNow(pipeline!.ctx),
      (r) => r.extra.length === 0 && r.checked === 0,
      30000,
    );
    expect(report.stale.concat(report.missing)).toEqual([]);
  });
});

describe('a 3-master Cluster source', () => {
  let cluster: RedisClusterHandle;
  let redis: Cluster;
  let pipeline: TestPipeline | undefined;

  beforeAll(async () => {
    cluster = await startRedisCluster({ masters: 3, replicasPerMaster: 0 });
    redis = new Cluster(cluster.urls.map((url) => ({ host: '127.0.0.1', port: Number(new URL(url).port) })));
  });

  afterAll(async () => {
    await pipeline?.stop();
    redis?.disconnect();
    await cluster?.stop();
  });

  it('in notifications mode: binary keys spread over every master indexed exactly', async () => {
    const cases: ByteCase[] = [EMPTY_KEY, ...byteCases('pre:')];
    await writeCases(redis, cases);
    const input: ConfigInput = {
      logLevel: (process.env.TEST_LOG_LEVEL as ConfigInput['logLevel']) ?? 'silent',
      redis: { cluster: { nodes: cluster.urls.slice(0, 2) } },
      queue: { cluster: { nodes: cluster.urls.slice(0, 2) }, prefix: '{res}' },
      elasticsearch: { url: esUrl() },
      mapping: { defaultIndex: uniqueIndex('bytes-cluster') },
      producer: { reconcileIntervalMs: 0, topologyRefreshMs: 500 },
      worker: {
        lockDurationMs: 4000,
        stalledIntervalMs: 1000,
        retryBaseMs: 50,
        retryMaxMs: 1000,
        maxDocumentBytes: MAX_DOC,
      },
    };
    pipeline = await startPipeline(input);
    await writeCases(redis, byteCases('live:'));
    await grow(redis, pipeline.ctx, 0);
    await expectInSyncThenCorruptionCaught(pipeline.ctx, 0, 'live:grow');
  });

  it('in replication mode too: every master’s RDB and command stream decoded exactly', async () => {
    await pipeline?.stop();
    pipeline = undefined;
    // The keys above are in each master's RDB; the live ones are written again through the streams.
    const input: ConfigInput = {
      logLevel: (process.env.TEST_LOG_LEVEL as ConfigInput['logLevel']) ?? 'silent',
      redis: { cluster: { nodes: cluster.urls.slice(0, 2) } },
      // The queue above's prefix: its keys live in this cluster, and keys under the prefix are never captured.
      queue: { cluster: { nodes: cluster.urls.slice(0, 2) }, prefix: '{res}' },
      elasticsearch: { url: esUrl() },
      mapping: { defaultIndex: uniqueIndex('bytes-cluster-repl') },
      producer: { mode: 'replication', topologyRefreshMs: 500 },
      worker: {
        lockDurationMs: 4000,
        stalledIntervalMs: 1000,
        retryBaseMs: 50,
        retryMaxMs: 1000,
        maxDocumentBytes: MAX_DOC,
      },
    };
    pipeline = await startPipeline(input);
    // Deleted and written again through the streams (a stream's fixed IDs cannot be added twice).
    const live = byteCases('live:');
    for (const c of live) await redis.del(c.key);
    await writeCases(redis, live);
    await grow(redis, pipeline.ctx, 0);
    await expectInSyncThenCorruptionCaught(pipeline.ctx, 0, 'live:grow');
  });
});
