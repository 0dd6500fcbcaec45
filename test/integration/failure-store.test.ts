import { Redis } from 'ioredis';
import type { ConfigInput } from '../../producers/capture/registry';
import { FailureStore, type FailureRecord } from '../../shared/core/failure-store';
import { keysRefused } from '../../shared/platform/metrics';
import {
  exited,
  getDoc,
  spawnCli,
  startPipeline,
  startServers,
  testConfigInput,
  waitFor,
  type TestPipeline,
  type TestServers,
} from '../support/pipeline';

/** Refused keys are kept once per key, beside the jobs, and leave the store once they index fine. */
describe('the per-key failure store', () => {
  let servers: TestServers;
  let redis: Redis;
  let pipeline: TestPipeline;
  let input: ConfigInput;
  let store: FailureStore;

  const cli = async (args: string[]): Promise<{ code: number | null; output: string }> => {
    const child = spawnCli(input, args);
    const code = await exited(child);
    return { code, output: child.output() };
  };
  const records = async (): Promise<FailureRecord[]> => {
    const all: FailureRecord[] = [];
    for await (const r of store.records()) all.push(r);
    return all.sort((a, b) => a.key.localeCompare(b.key));
  };

  beforeAll(async () => {
    servers = await startServers('failstore', { notify: false });
    redis = new Redis(servers.source.url);
    input = testConfigInput(servers, {
      mapping: { defaultIndex: servers.index, rules: [{ match: 'json:*', json: true }] },
    });
    // Only a worker: every enqueue below comes from the commands the test runs.
    pipeline = await startPipeline(input, { producer: false, worker: true });
    store = new FailureStore(pipeline.ctx.queueRedis, pipeline.ctx.config.queue.prefix);
  });

  afterAll(async () => {
    await pipeline?.stop();
    redis.disconnect();
    await servers.stop();
  });

  it('keeps 2 refused keys as 2 records across 5 reconciliations, and replaying after the fix clears them', async () => {
    await redis.set('json:1', 'not json');
    await redis.set('json:2', '{broken');
    for (let i = 0; i < 3; i++) await redis.set(`ok:${i}`, JSON.stringify({ i }));
    const refusedBefore = (await keysRefused.get()).values
      .filter((v) => v.labels.class === 'not_json')
      .reduce((n, v) => n + v.value, 0);

    for (let i = 0; i < 5; i++) {
      const r = await cli(['reconcile', '--wait']);
      expect(r).toMatchObject({ code: 0 });
    }

    const recs = await records();
    expect(recs.map((r) => r.key)).toEqual(['json:1', 'json:2']);
    for (const r of recs) {
      expect(r).toMatchObject({ db: 0, index: servers.index, reasonClass: 'not_json', attempts: 5 });
      expect(r.reason).toMatch(/value is not valid JSON/);
      expect(r.firstSeen).toBeLessThan(r.lastSeen);
    }
    // The keys that shared their jobs completed normally; no job failed for the refusals.
    expect((await getDoc(pipeline.ctx, servers.index, 'ok:1'))?.value).toEqual({ i: 1 });
    expect(await pipeline.ctx.queues().partitions[0]!.getFailedCount()).toBe(0);
    const refusedAfter = (await keysRefused.get()).values
      .filter((v) => v.labels.class === 'not_json')
      .reduce((n, v) => n + v.value, 0);
    expect(refusedAfter - refusedBefore).toBe(10);

    const listed = await cli(['failures']);
    expect(listed.code).toBe(0);
    expect(listed.output).toMatch(new RegExp(`^0\\tjson:1\\t${servers.index}\\tnot_json\\t5\\t`, 'm'));
    expect(listed.output).toContain('2 refused keys (not_json 2)');

    const dry = await cli(['replay', '--dry-run']);
    expect(dry.code).toBe(0);
    expect(dry.output).toMatch(/^0\tjson:1\t.*value is not valid JSON/m);
    expect(dry.output).toMatch(/^0\tjson:2\t/m);
    expect(dry.output).toContain('would replay 2 of 2 refused keys and 0 of 0 failed jobs');
    expect((await records()).map((r) => r.attempts)).toEqual([5, 5]);

    // Fixed data: replaying one key by pattern clears only its record.
    await redis.set('json:1', '{"fixed":1}');
    const one = await cli(['replay', '--pattern', 'json:1']);
    expect(one.output).toContain('replayed 1 of 2 refused keys');
    await waitFor('json:1 to leave the store', records, (r) => r.map((x) => x.key).join() === 'json:2', 20000);
    expect((await getDoc(pipeline.ctx, servers.index, 'json:1'))?.value).toEqual({ fixed: 1 });

    // Not fixed yet: replay refuses it again and only its attempt count moves.
    await cli(['replay', '--reason', 'not valid JSON']);
    await waitFor('json:2 refused a 6th time', records, (r) => r[0]?.attempts === 6, 20000);
    expect((await records()).length).toBe(1);

    await redis.set('json:2', '{"fixed":2}');
    const rest = await cli(['replay']);
    expect(rest.output).toContain('replayed 1 of 1 refused keys');
    await waitFor('the store to empty', records, (r) => r.length === 0, 20000);
    expect((await getDoc(pipeline.ctx, servers.index, 'json:2'))?.value).toEqual({ fixed: 2 });
  });

  it('drops the record of a key that indexes fine through any path (a resync, a replay of a deleted key)', async () => {
    await redis.set('json:3', 'nope');
    await redis.set('json:4', 'nope');
    await cli(['reconcile', '--wait']);
    expect((await records()).map((r) => r.key)).toEqual(['json:3', 'json:4']);
    await redis.set('json:3', '{"ok":true}');
    await redis.del('json:4');
    await cli(['resync', '--pattern', 'json:3', '--wait']);
    await waitFor('json:3 to leave the store', records, (r) => r.map((x) => x.key).join() === 'json:4', 20000);
    // A key that is gone leaves too: replaying it writes its delete.
    await cli(['replay']);
    await waitFor('the store to empty', records, (r) => r.length === 0, 20000);
  });

  it('keeps a binary key exactly', async () => {
    const key = Buffer.from([0x6a, 0x73, 0x6f, 0x6e, 0x3a, 0xff, 0xfe]); // "json:" + two bytes that are not UTF-8
    await redis.set(key, 'not json');
    await cli(['reconcile', '--wait']);
    const recs = await records();
    expect(recs).toHaveLength(1);
    expect(recs[0]!.key).toBe('json:\udcff\udcfe');
    await redis.set(key, '{"b":1}');
    await cli(['replay']);
    await waitFor('the store to empty', records, (r) => r.length === 0, 20000);
  });

  it('updates one record per key: attempts add up across workers, the latest reason wins, an indexed key leaves', async () => {
    const own = new FailureStore(pipeline.ctx.queueRedis, 'store-unit');
    const a = { db: 1, key: 'k:a', index: 'i', reason: '400 document_parsing_exception: first' };
    // Two workers refusing the same key at once: both attempts count.
    await Promise.all([own.update([a], [], 1000), own.update([a], [], 1000)]);
    await own.update(
      [
        { ...a, reason: '403 cluster_block_exception: later' },
        { db: 1, key: 'k:b', index: 'i', reason: 'transform failed: x' },
      ],
      [],
      2000,
    );
    const recs = await own.matching({});
    expect(recs.sort((x, y) => x.key.localeCompare(y.key))).toEqual([
      {
        db: 1,
        key: 'k:a',
        index: 'i',
        reason: '403 cluster_block_exception: later',
        reasonClass: 'cluster_block_exception',
        firstSeen: 1000,
        lastSeen: 2000,
        attempts: 3,
      },
      {
        db: 1,
        key: 'k:b',
        index: 'i',
        reason: 'transform failed: x',
        reasonClass: 'transform',
        firstSeen: 2000,
        lastSeen: 2000,
        attempts: 1,
      },
    ]);
    expect(await own.matching({ since: 1500, reason: /transform/ })).toHaveLength(1);
    // The same key in another database is another record.
    await own.update([], [{ db: 0, key: 'k:a' }]);
    expect(await own.count()).toBe(2);
    await own.update(
      [],
      [
        { db: 1, key: 'k:a' },
        { db: 1, key: 'k:b' },
      ],
    );
    expect(await own.count()).toBe(0);
  });
});
