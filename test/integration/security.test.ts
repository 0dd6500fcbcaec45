import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Redis } from 'ioredis';
import { stringify } from 'yaml';
import type { ConfigInput } from '../../producers/capture/registry';
import { esUrl, uniqueIndex } from '../support/elasticsearch';
import {
  exited,
  getDoc,
  spawnCli,
  startPipeline,
  startServers,
  testConfigInput,
  waitFor,
  waitInSync,
  type TestPipeline,
  type TestServers,
} from '../support/pipeline';
import { getFreePort } from '../support/ports';
import { startRedis, type RedisServerHandle } from '../support/redis-server';
import { makeTestCerts, redisTlsArgs, type TestCerts } from '../support/tls';

const REPO = resolve(__dirname, '../..');

describe('Redis over TLS with client certificates', () => {
  let certs: TestCerts;
  let source: RedisServerHandle;
  let queue: RedisServerHandle;
  let tlsPorts: { source: number; queue: number };
  let pipeline: TestPipeline | undefined;
  let plain: Redis;

  beforeAll(async () => {
    certs = makeTestCerts();
    tlsPorts = { source: await getFreePort(), queue: await getFreePort() };
    // The plain port stays for the test's own seeding and the start-up ping; the tool only gets the TLS port.
    source = await startRedis({ notifyKeyspaceEvents: 'KEA', args: redisTlsArgs(certs, tlsPorts.source) });
    queue = await startRedis({ args: redisTlsArgs(certs, tlsPorts.queue) });
    plain = new Redis(source.url);
  });

  afterAll(async () => {
    await pipeline?.stop();
    plain.disconnect();
    await Promise.all([source.stop(), queue.stop()]);
  });

  it('runs the whole pipeline over rediss:// with a private CA and client certificates', async () => {
    const tls = { ca: certs.ca, cert: certs.clientCert, key: certs.clientKey };
    const index = uniqueIndex('tls');
    const input: ConfigInput = {
      logLevel: 'silent',
      redis: { url: `rediss://localhost:${tlsPorts.source}`, tls },
      queue: { url: `rediss://127.0.0.1:${tlsPorts.queue}`, tls },
      elasticsearch: { url: esUrl() },
      mapping: { defaultIndex: index },
      producer: { reconcileIntervalMs: 0 },
    };
    await plain.hset('user:1', { name: 'Ada' });
    pipeline = await startPipeline(input);
    await plain.set('user:2', 'live');
    await waitFor(
      'user:2 indexed',
      () => getDoc(pipeline!.ctx, index, 'user:2'),
      (d) => d?.value === 'live',
    );
    const report = await waitInSync(pipeline.ctx);
    expect(report.checked).toBe(2);
    // Every connection of the tool came in on the TLS port.
    const tools = ((await plain.client('LIST')) as string).split('\n').filter((l) => l.includes('name=redis-es-sync'));
    expect(tools.length).toBeGreaterThanOrEqual(2);
    for (const line of tools) expect(line).toContain(`laddr=127.0.0.1:${tlsPorts.source} `);
  });

  it('refuses a server whose CA it does not trust, and the server refuses a client without a certificate', async () => {
    const attempt = async (tls: Record<string, unknown>): Promise<string> => {
      const r = new Redis(`rediss://localhost:${tlsPorts.source}`, {
        tls,
        lazyConnect: true,
        retryStrategy: () => null,
        maxRetriesPerRequest: 0,
      });
      let first: string | undefined;
      r.on('error', (err: Error) => (first ??= err.message));
      try {
        await r.connect();
        await r.ping();
        return 'connected';
      } catch (err) {
        return first ?? (err as Error).message;
      } finally {
        r.disconnect();
      }
    };
    expect(await attempt({ cert: readFileSync(certs.clientCert), key: readFileSync(certs.clientKey) })).toMatch(
      /self[- ]signed|unable to verify/i,
    );
    expect(await attempt({ ca: readFileSync(certs.ca) })).not.toBe('connected');
  });
});

describe('secrets', () => {
  let servers: TestServers;
  let admin: Redis;

  beforeAll(async () => {
    servers = await startServers('secrets');
    admin = new Redis(servers.source.url);
  });

  afterAll(async () => {
    admin.disconnect();
    await servers.stop();
  });

  it('never appear in the logs of a real start-up, even at trace level and across reconnects', async () => {
    const redisPassword = 'redis-pw-7f3a9c1e55';
    const apiKey = 'es-api-key-b81d04e2aa';
    const queueAdmin = new Redis(servers.queue.url);
    for (const r of [admin, queueAdmin])
      await r.call('ACL', 'SETUSER', 'sync', 'on', `>${redisPassword}`, '~*', '&*', '+@all');
    queueAdmin.disconnect();
    const dir = mkdtempSync(join(tmpdir(), 'res-secrets-'));
    const index = uniqueIndex('secrets');
    writeFileSync(
      join(dir, 'sync.yml'),
      stringify({ mapping: { defaultIndex: index }, producer: { reconcileIntervalMs: 0 } }),
    );
    writeFileSync(join(dir, 'es-key'), `${apiKey}\n`);
    const child = spawn(process.execPath, [join(REPO, 'dist/cli/main.js'), 'run'], {
      env: {
        PATH: process.env.PATH ?? '',
        CONFIG: join(dir, 'sync.yml'),
        REDIS_URL: `redis://sync:${redisPassword}@127.0.0.1:${servers.source.port}`,
        QUEUE_REDIS_URL: `redis://sync:${redisPassword}@127.0.0.1:${servers.queue.port}`,
        ELASTICSEARCH_URL: esUrl(),
        ELASTICSEARCH_API_KEY_FILE: join(dir, 'es-key'),
        LOG_LEVEL: 'trace',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    try {
      await waitFor(
        'capture to start',
        async () => out,
        (o) => o.includes('capturing keyspace notifications'),
        30000,
      );
      // Connection errors are logged with the URL they concern: make the tool's reconnects fail for a while.
      await admin.call('ACL', 'SETUSER', 'sync', 'off');
      await admin.client('KILL', 'USER', 'sync');
      await waitFor(
        'the failing reconnect to be logged',
        async () => out,
        (o) => o.includes('redis connection error'),
        30000,
      );
      await admin.call('ACL', 'SETUSER', 'sync', 'on');
      await waitFor(
        'the reconnect to be logged',
        async () => out,
        (o) => o.includes('redis connection ready again'),
        30000,
      );
      await admin.set('secret-test', 'v');
      await waitFor(
        'the change to be indexed',
        async () => out,
        (o) => o.includes('job indexed'),
        30000,
      );
      child.kill('SIGTERM');
      expect(await exited(child)).toBe(0);
    } finally {
      child.kill('SIGKILL');
    }
    expect(out).toContain('configuration loaded');
    expect(out).toContain(`sync:***@127.0.0.1:${servers.source.port}`);
    expect(out).not.toContain(redisPassword);
    expect(out).not.toContain(apiKey);
    // Every line is a pino JSON line: nothing a library printed by itself, across the reconnects too.
    const stray = out.split('\n').filter((l) => l.trim() !== '' && !/^\{.*"level":\d+.*\}$/.test(l));
    expect(stray).toEqual([]);
  });
});

/** The ACL users docs/security.md documents, on a real redis-server. */
describe('least-privilege Redis ACL users (docs/security.md)', () => {
  let servers: TestServers;
  let admin: Redis;
  let queueAdmin: Redis;
  const pipelines: TestPipeline[] = [];

  const readmeAcl = (user: string): string[] => {
    const line = readFileSync(join(REPO, 'docs/security.md'), 'utf8')
      .split('\n')
      .find((l) => l.startsWith(`ACL SETUSER ${user} `));
    if (!line) throw new Error(`docs/security.md has no "ACL SETUSER ${user}" line`);
    return line
      .split(' ')
      .slice(3)
      .map((rule) => (rule === '>CHANGE-ME' ? '>pw' : rule));
  };

  const urlOf = (server: RedisServerHandle, user: string): string => `redis://${user}:pw@127.0.0.1:${server.port}`;

  beforeAll(async () => {
    servers = await startServers('acl');
    admin = new Redis(servers.source.url);
    queueAdmin = new Redis(servers.queue.url);
    await admin.call('ACL', 'SETUSER', 'res-producer', ...readmeAcl('res-producer'));
    await admin.call('ACL', 'SETUSER', 'res-worker', ...readmeAcl('res-worker'));
    await queueAdmin.call('ACL', 'SETUSER', 'res-queue', ...readmeAcl('res-queue'));
  });

  afterAll(async () => {
    for (const p of pipelines) await p.stop();
    admin.disconnect();
    queueAdmin.disconnect();
    await servers.stop();
  });

  it('producer, worker and queue work with exactly the documented rights', async () => {
    const pipe = admin.pipeline();
    pipe
      .set('s', 'v')
      .hset('h', { f: 'v' })
      .rpush('l', 'a', 'b')
      .sadd('st', 'x')
      .zadd('z', 1, 'm')
      .xadd('x', '*', 'f', 'v')
      .pexpire('h', 600000);
    await pipe.exec();
    const base = testConfigInput(servers);
    const queue = { url: urlOf(servers.queue, 'res-queue') };
    pipelines.push(
      await startPipeline(
        { ...base, redis: { url: urlOf(servers.source, 'res-worker') }, queue },
        { producer: false, worker: true },
      ),
    );
    pipelines.push(
      await startPipeline(
        { ...base, redis: { url: urlOf(servers.source, 'res-producer') }, queue },
        { producer: true, worker: false },
      ),
    );
    await admin.set('live', '1');
    await admin.del('s');
    // verify reads as an unrestricted user: it needs SCAN, which the worker does not.
    const checker = await startPipeline(base, { producer: false, worker: false });
    pipelines.push(checker);
    const report = await waitInSync(checker.ctx);
    expect(report.checked).toBe(6);
    expect(await admin.call('ACL', 'LOG')).toEqual([]);
    expect(await queueAdmin.call('ACL', 'LOG')).toEqual([]);
  });

  it('a producer user missing a needed command stops at start-up and names it', async () => {
    const rules = readmeAcl('res-producer').filter((r) => r !== '+config|get');
    await admin.call('ACL', 'SETUSER', 'res-producer-short', ...rules);
    // A prefix of its own: the producer of the test above still holds the default lease.
    const base = testConfigInput(servers);
    const child = spawnCli(
      {
        ...base,
        redis: { url: urlOf(servers.source, 'res-producer-short') },
        queue: { url: servers.queue.url, prefix: 'acl-short' },
      },
      ['producer'],
    );
    expect(await exited(child)).toBe(2);
    expect(child.output()).toMatch(
      /source Redis user may not read notify-keyspace-events \(NOPERM.*config\|get.*\): grant it \+config\|get/,
    );
  });
});
