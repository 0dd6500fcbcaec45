import { Redis } from 'ioredis';
import type { ConfigInput } from '../../shared/config/schema';
import { exited, getDoc, spawnCli, startPipeline, startServers, testConfigInput, waitFor, type TestPipeline, type TestServers } from '../support/pipeline';

/** The `redis-es-sync` binary as a user runs it: exit codes, output, signals. */
describe('the redis-es-sync CLI', () => {
  let servers: TestServers;
  let redis: Redis;
  let worker: TestPipeline | undefined;

  beforeAll(async () => {
    servers = await startServers('cli');
    redis = new Redis(servers.source.url);
    const pipe = redis.pipeline();
    for (let i = 0; i < 300; i++) pipe.set(`doc:${i}`, JSON.stringify({ n: i }));
    pipe.zadd('board', 5, 'ada', 7, 'bob');
    await pipe.exec();
  });

  afterAll(async () => {
    await worker?.stop();
    redis.disconnect();
    await servers.stop();
  });

  const run = async (input: ConfigInput, args: string[]): Promise<{ code: number | null; output: string }> => {
    const child = spawnCli(input, args);
    const code = await exited(child);
    return { code, output: child.output() };
  };

  it('stops at start-up on invalid configuration, naming the field', async () => {
    const input = testConfigInput(servers, { worker: { bulkMaxDocs: -5 } });
    const { code, output } = await run(input, ['verify']);
    expect(code).toBe(2);
    expect(output).toContain('worker.bulkMaxDocs');
    expect(output).toMatch(/invalid configuration/);
  });

  it('snapshot --wait enqueues every key and returns once a worker indexed them', async () => {
    const input = testConfigInput(servers);
    worker = await startPipeline(input, { producer: false, worker: true });
    const { code, output } = await run({ ...input, logLevel: 'info' }, ['snapshot', '--wait']);
    expect({ code, output }).toMatchObject({ code: 0 });
    expect(output).toMatch(/"keys":301/);
    expect(output).toMatch(/queue drained/);
    expect((await getDoc(worker.ctx, servers.index, 'doc:7'))?.value).toEqual({ n: 7 });
    expect((await getDoc(worker.ctx, servers.index, 'board'))?.value).toEqual([
      { member: 'ada', score: 5 },
      { member: 'bob', score: 7 },
    ]);
  });

  it('verify exits 0 when in sync and 1, listing the keys, when not', async () => {
    const input = testConfigInput(servers);
    const inSync = await run(input, ['verify', '--settle-ms', '0']);
    expect(inSync.output.trim()).toBe('checked 301, missing 0, stale 0, extra 0');
    expect(inSync.code).toBe(0);

    // Behind the tool's back: no worker follows these (no producer runs).
    await redis.set('doc:1', JSON.stringify({ n: 'changed' }));
    await redis.set('doc:new', 'x');
    await redis.del('doc:2');
    const out = await run(input, ['verify', '--settle-ms', '0']);
    expect(out.code).toBe(1);
    expect(out.output).toContain('checked 301, missing 1, stale 1, extra 1');
    expect(out.output).toContain('stale\tdoc:1');
    expect(out.output).toContain('missing\tdoc:new');
    expect(out.output).toContain('extra\tdoc:2');
  });

  it('run indexes live changes, then drains and exits 0 on SIGTERM', async () => {
    // Only the CLI's own worker may index from here on.
    await worker?.stop();
    worker = await startPipeline(testConfigInput(servers), { producer: false, worker: false });
    const child = spawnCli({ ...testConfigInput(servers), logLevel: 'info' }, ['run']);
    await waitFor('run to capture changes', async () => child.output(), (o) => o.includes('capturing keyspace notifications'), 30000);
    await redis.set('doc:late', 'y');
    await waitFor('doc:late indexed', () => getDoc(worker!.ctx, servers.index, 'doc:late'), (d) => d?.value === 'y', 20000);
    child.kill('SIGTERM');
    expect(await exited(child)).toBe(0);
    expect(child.output()).toMatch(/shutting down: draining/);
    expect(child.output()).toMatch(/"msg":"stopped"/);
  });
});
