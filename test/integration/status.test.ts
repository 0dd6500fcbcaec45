import { Redis } from 'ioredis';
import type { StatusReport } from '../../cli/status/report';
import { readFreshness } from '../../shared/core/canary';
import { reconcileRecordKey } from '../../producers/reconcile-record';
import type { ConfigInput } from '../../producers/capture/registry';
import {
  exited,
  startPipeline,
  startServers,
  testConfigInput,
  waitFor,
  waitInSync,
  spawnCli,
  type TestPipeline,
  type TestServers,
} from '../support/pipeline';

/** `redis-es-sync status [args]` as a process: its exit code and its stdout alone. */
async function status(input: ConfigInput, args: string[]): Promise<{ code: number | null; stdout: string }> {
  const child = spawnCli(input, ['status', ...args]);
  let stdout = '';
  child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
  const code = await exited(child);
  return { code, stdout };
}

/**
 * `status` against a running pipeline (everything fine: exit 0) and after it stopped with a
 * refused key left behind (no lease holder, no current freshness, a failed key: exit 1), in
 * text and as JSON.
 */
describe('status', () => {
  let servers: TestServers;
  let pipeline: TestPipeline | undefined;
  let redis: Redis;
  let input: ConfigInput;

  beforeAll(async () => {
    servers = await startServers('status');
    redis = new Redis(servers.source.url);
    input = testConfigInput(servers, {
      mapping: { defaultIndex: servers.index, rules: [{ match: 'json:*', json: true }] },
      producer: { canary: { intervalMs: 1000, pollMs: 200 } },
    });
  });

  afterAll(async () => {
    await pipeline?.stop();
    redis.disconnect();
    await servers.stop();
  });

  it('shows a healthy pipeline and exits 0, then names what needs attention and exits 1', async () => {
    for (let i = 0; i < 20; i++) await redis.hset(`user:${i}`, { name: `user ${i}` });
    pipeline = await startPipeline(input);
    const { ctx } = pipeline;
    await waitInSync(ctx);
    await waitFor(
      'a freshness measurement',
      () => readFreshness(ctx.queueRedis, ctx.config.queue.prefix),
      (r) => r[0]?.seenWrittenAt !== undefined,
      20000,
    );
    // The tenure's first reconciliation records its outcome.
    await waitFor(
      'the reconciliation record',
      () => ctx.queueRedis.get(reconcileRecordKey(ctx.config.queue.prefix)),
      (v) => v !== null,
    );

    const healthy = await status(input, ['--json']);
    const report = JSON.parse(healthy.stdout) as StatusReport;
    expect(report.attention).toEqual([]);
    expect(healthy.code).toBe(0);
    expect(report.capture).toMatchObject({ mode: 'notifications', leases: 'single' });
    expect(report.capture.holders).toHaveLength(1);
    expect(report.capture.holders[0]?.holder).toMatch(/:\d+:/);
    expect(report.freshness).toEqual([expect.objectContaining({ shard: 'source', current: true })]);
    expect(report.queue.total).toMatchObject({ failed: 0 });
    expect(report.failedKeys).toEqual({ total: 0, byReason: {} });
    expect(report.reconciliation).toMatchObject({ result: 'ok' });
    expect(report.indices).toEqual([{ index: servers.index, documents: 20, keys: 20 }]);
    expect(report.rebuild).toBeNull();

    const text = await status(input, []);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/^capture\s+notifications, one producer lease$/m);
    expect(text.stdout).toMatch(/^freshness\s+source: \d+\.\d s$/m);
    expect(text.stdout).toMatch(new RegExp(`^indices\\s+${servers.index}: 20 documents, 20 keys$`, 'm'));
    expect(text.stdout).toMatch(/^attention\s+nothing needs attention$/m);

    await redis.set('json:bad', 'not json');
    await waitFor(
      'the refused key recorded',
      async () => (await status(input, ['--json', '--no-keys'])).stdout,
      (out) => (JSON.parse(out) as StatusReport).failedKeys.total === 1,
      20000,
      500,
    );
    await pipeline.stop();
    pipeline = undefined;

    const stopped = await status(input, ['--json', '--no-keys']);
    expect(stopped.code).toBe(1);
    const after = JSON.parse(stopped.stdout) as StatusReport;
    expect(after.capture.holders).toEqual([{ shard: 'all', holder: null }]);
    expect(after.failedKeys).toEqual({ total: 1, byReason: { not_json: 1 } });
    expect(after.indices[0]?.keys).toBeNull();
    expect(after.attention).toEqual(
      expect.arrayContaining([
        'no producer holds the capture lease',
        '1 keys refused by the index (redis-es-sync failures)',
      ]),
    );
    const textAfter = await status(input, ['--no-keys']);
    expect(textAfter.code).toBe(1);
    expect(textAfter.stdout).toMatch(/^\s+held by\s+NOBODY$/m);
    expect(textAfter.stdout).toMatch(/^ATTENTION\s+/m);
  });
});
