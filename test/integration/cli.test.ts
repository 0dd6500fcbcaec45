import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Redis } from 'ioredis';
import { esUrl } from '../support/elasticsearch';
import type { ConfigInput } from '../../producers/capture/registry';
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
    // Off a terminal the drain shows as log lines, the last one with the jobs drained.
    expect(output).toMatch(/"msg":"snapshot: queue drain \(jobs\) finished"/);
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

  it('prints its version, and treats a bad command line as a usage error (exit 64, usage printed)', async () => {
    const input = testConfigInput(servers);
    const version = await run(input, ['--version']);
    expect(version.code).toBe(0);
    expect(version.output.trim()).toMatch(/^\d+\.\d+\.\d+$/);
    const badNumber = await run(input, ['verify', '--list', 'twenty']);
    expect(badNumber.code).toBe(64);
    expect(badNumber.output).toContain("option '--list <n>' argument 'twenty' is invalid");
    expect(badNumber.output).toContain('Usage: redis-es-sync verify');
    const unknown = await run(input, ['verfiy']);
    expect(unknown.code).toBe(64);
    const badDate = await run(input, ['failures', '--since', 'soon']);
    expect(badDate.code).toBe(64);
    expect(badDate.output).toContain('--since: is not a date/time');
    expect(badDate.output).toContain('Usage: redis-es-sync failures');
  });

  it('npm run cli follows STACK_DIR, and says what to run when the stack is not up', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'res-stack-'));
    const script = resolve(__dirname, '../../dist/scripts/with-stack.js');
    const cli = resolve(__dirname, '../../dist/cli/main.js');
    const launch = (stackDir: string, args: string[]): Promise<{ code: number | null; output: string }> =>
      new Promise((done) => {
        const child = spawn(process.execPath, [script, cli, ...args], {
          env: { PATH: process.env.PATH ?? '', STACK_DIR: stackDir },
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let output = '';
        child.stdout.on('data', (d: Buffer) => (output += d.toString()));
        child.stderr.on('data', (d: Buffer) => (output += d.toString()));
        child.on('exit', (code) => done({ code, output }));
      });
    const missing = await launch(join(dir, 'absent'), ['verify']);
    expect(missing.code).toBe(2);
    expect(missing.output).toContain('the local stack is not up');
    expect(missing.output).toContain('npm run stack up');
    writeFileSync(
      join(dir, 'env'),
      `REDIS_URL=${servers.source.url}\nQUEUE_REDIS_URL=${servers.queue.url}\nELASTICSEARCH_URL=${esUrl()}\nLOG_LEVEL=silent\n`,
    );
    const failures = await launch(dir, ['failures']);
    expect(failures).toMatchObject({ code: 0, output: expect.stringContaining('0 refused keys') as unknown });
  });

  it('run indexes live changes, then drains and exits 0 on SIGTERM', async () => {
    // Only the CLI's own worker may index from here on.
    await worker?.stop();
    worker = await startPipeline(testConfigInput(servers), { producer: false, worker: false });
    const child = spawnCli({ ...testConfigInput(servers), logLevel: 'info' }, ['run']);
    await waitFor(
      'run to capture changes',
      async () => child.output(),
      (o) => o.includes('capturing keyspace notifications'),
      30000,
    );
    await redis.set('doc:late', 'y');
    await waitFor(
      'doc:late indexed',
      () => getDoc(worker!.ctx, servers.index, 'doc:late'),
      (d) => d?.value === 'y',
      20000,
    );
    child.kill('SIGTERM');
    expect(await exited(child)).toBe(0);
    expect(child.output()).toMatch(/shutting down: draining/);
    expect(child.output()).toMatch(/"msg":"stopped"/);
  });
});
