import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { exited, spawnCli, startServers, testConfigInput, waitFor, type TestServers } from '../support/pipeline';
import { getFreePort } from '../support/ports';

const DIST = resolve(__dirname, '../../dist');

/** A start that fails half-way stops what had started; nothing is left to keep the process alive. */
describe('the lifecycle of run', () => {
  let servers: TestServers;

  beforeAll(async () => {
    // No keyspace notifications: the producer refuses to start, after the HTTP surface and the worker did.
    servers = await startServers('lifecycle', { notify: false });
  });

  afterAll(async () => {
    await servers.stop();
  });

  it('leaves no open handle when the producer fails to start', async () => {
    const input = testConfigInput(servers, { http: { port: await getFreePort() } });
    // startService in a process of its own that never calls exit: it ends only if nothing is left open.
    const script = `
      const { buildContext } = require(${JSON.stringify(`${DIST}/cli/context.js`)});
      const { startService } = require(${JSON.stringify(`${DIST}/cli/service.js`)});
      const { ConfigSchema } = require(${JSON.stringify(`${DIST}/producers/capture/registry.js`)});
      const { createLogger } = require(${JSON.stringify(`${DIST}/shared/platform/logger.js`)});
      const input = ${JSON.stringify(input)};
      const ctx = buildContext({ config: ConfigSchema.parse(input), baseDir: process.cwd() }, createLogger('info'));
      startService(ctx, { producer: true, worker: true }).then(
        () => console.log('STARTED'),
        (err) => console.log('START FAILED ' + err.code + ': ' + err.message),
      );
    `;
    const child = spawn(process.execPath, ['-e', script], {
      env: { PATH: process.env.PATH ?? '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const killer = setTimeout(() => child.kill('SIGKILL'), 30000);
    const code = await exited(child);
    clearTimeout(killer);
    expect({ code, signal: child.signalCode }).toEqual({ code: 0, signal: null });
    expect(out).toContain('START FAILED REDIS_SETUP');
    // The worker had started and was closed again by the rollback.
    expect(out).toMatch(/"msg":"worker started"/);
    expect(out).not.toContain('STARTED\n');
  });

  it('run exits 2 naming the missing notification flags', async () => {
    const child = spawnCli(testConfigInput(servers), ['run']);
    const started = Date.now();
    const code = await exited(child);
    expect(code).toBe(2);
    expect(Date.now() - started).toBeLessThan(15000);
    expect(child.output()).toMatch(/notify-keyspace-events/);
    expect(child.output()).not.toMatch(/^\s+at /m);
  });

  it('a signal while run waits for a dependency stops it promptly, with exit 0', async () => {
    const child = spawnCli(
      {
        ...testConfigInput(servers),
        logLevel: 'info',
        elasticsearch: { url: `http://127.0.0.1:${await getFreePort()}` },
      },
      ['run'],
    );
    await waitFor(
      'run to wait for Elasticsearch',
      async () => child.output(),
      (o) => o.includes('waiting for Elasticsearch'),
      15000,
    );
    child.kill('SIGINT');
    expect(await exited(child)).toBe(0);
    expect(child.output()).toMatch(/"msg":"stopped"/);
  });
});

describe('stopping run with a dependency down', () => {
  let servers: TestServers;

  beforeAll(async () => {
    servers = await startServers('lifecycle-stop');
  });

  afterAll(async () => {
    await servers.stop();
  });

  it('exits within a bound on SIGTERM while the queue Redis is down', async () => {
    const child = spawnCli({ ...testConfigInput(servers), logLevel: 'info' }, ['run']);
    await waitFor(
      'run to capture changes',
      async () => child.output(),
      (o) => o.includes('capturing keyspace notifications'),
      30000,
    );
    await servers.queue.stop();
    await waitFor(
      'the worker to see the queue Redis go',
      async () => child.output(),
      (o) => o.includes('ECONNREFUSED'),
      15000,
    );
    const stopAt = Date.now();
    child.kill('SIGTERM');
    const code = await exited(child);
    const ms = Date.now() - stopAt;
    if (process.env.SHOW_STOP)
      process.stdout.write(
        child
          .output()
          .split('\n')
          .filter((l) => /step|stop|shutting|drain|lease|closed/.test(l))
          .join('\n'),
      );
    // Loose: the old shutdown waited out its 30 s deadline here.
    expect(ms).toBeLessThan(15000);
    expect(code).toBe(0);
    expect(child.output()).toMatch(/"msg":"stopped"/);
  });
});
