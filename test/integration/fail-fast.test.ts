import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import type { ConfigInput } from '../../producers/capture/registry';
import { esUrl } from '../support/elasticsearch';
import { exited, spawnCli, startServers, testConfigInput, waitFor, type TestServers } from '../support/pipeline';
import { getFreePort } from '../support/ports';
import { startRedis, type RedisServerHandle } from '../support/redis-server';

/**
 * One broken dependency at a time, as an operator meets it: every one-shot command ends within
 * seconds with the documented exit code and one line naming the endpoint, never a secret or a
 * stack; `run` stops on what waiting cannot fix and says what it waits for otherwise.
 */
describe('failing fast with a readable message', () => {
  const PASSWORD = 'redis-secret-pw-31337';
  const API_KEY = 'es-api-key-s3cr3t-value';
  /** Loose: the dependency timeout below is 1.5 s; a hang would take minutes. */
  const CHECK_MS = 5000;
  const BOUND_MS = 15000;

  let servers: TestServers;
  let secured: RedisServerHandle;
  let silent: Server;
  let silentPort: number;
  let refusedPort: number;
  const sockets = new Set<Socket>();
  let http: HttpServer;
  let httpPort: number;
  /** What the fake Elasticsearch answers: status and body, per test. */
  let esAnswer: { status: number; body: unknown } = { status: 200, body: {} };
  /** When set, answers by method and path instead (undefined: esAnswer). */
  let esRoutes: ((method: string, url: string) => { status: number; body: unknown } | undefined) | undefined;
  let keyFile: string;

  beforeAll(async () => {
    servers = await startServers('failfast');
    // Started open (the helper checks it with a bare PING), then locked with a password.
    secured = await startRedis();
    const admin = new Redis(secured.url);
    await admin.config('SET', 'requirepass', PASSWORD);
    admin.disconnect();
    // Accepts connections and never says a word.
    silent = createServer((socket) => {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    silentPort = (silent.address() as { port: number }).port;
    refusedPort = await getFreePort();
    // Speaks HTTP: another protocol for a Redis client, a stand-in Elasticsearch for the ES client.
    http = createHttpServer((req, res) => {
      req.resume();
      const answer = esRoutes?.(req.method ?? 'GET', req.url ?? '/') ?? esAnswer;
      res.writeHead(answer.status, { 'content-type': 'application/json', 'x-elastic-product': 'Elasticsearch' });
      res.end(req.method === 'HEAD' ? undefined : JSON.stringify(answer.body));
    });
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    httpPort = (http.address() as { port: number }).port;
    const dir = mkdtempSync(join(tmpdir(), 'res-failfast-'));
    keyFile = join(dir, 'api-key');
    writeFileSync(keyFile, API_KEY);
  });

  afterAll(async () => {
    for (const s of sockets) s.destroy();
    await new Promise((r) => silent.close(r));
    http.closeAllConnections();
    await new Promise((r) => http.close(r));
    await secured.stop();
    await servers.stop();
  });

  const base = (over: { source?: string; queue?: string; es?: string } = {}): ConfigInput =>
    testConfigInput(servers, {
      logLevel: 'info',
      redis: { url: over.source ?? servers.source.url },
      queue: { url: over.queue ?? servers.queue.url },
      elasticsearch: { url: over.es ?? esUrl() },
      // Long enough that a busy machine (two test runs and their engines on two cores) still
      // answers a healthy check in time, so a refused password is not taken for a timeout.
      dependencies: { timeoutMs: CHECK_MS },
    });

  async function runCli(
    input: ConfigInput,
    args: string[],
    env: Record<string, string> = {},
  ): Promise<{ code: number | null; output: string; ms: number }> {
    const started = Date.now();
    const child = spawnCli(input, args, { env });
    const timer = setTimeout(() => child.kill('SIGKILL'), 60000);
    const code = await exited(child);
    clearTimeout(timer);
    return { code, output: child.output(), ms: Date.now() - started };
  }

  function expectReadable(
    r: { code: number | null; output: string; ms: number },
    code: number,
    endpoint: RegExp,
    detail: RegExp,
  ): void {
    expect({ code: r.code, output: r.output }).toMatchObject({ code });
    expect(r.ms).toBeLessThan(BOUND_MS);
    expect(r.output).toMatch(endpoint);
    expect(r.output).toMatch(detail);
    expect(r.output).not.toContain(PASSWORD);
    expect(r.output).not.toContain(API_KEY);
    expect(r.output).not.toMatch(/^\s+at /m);
  }

  const redisCases = () => [
    {
      name: 'a port that accepts and never answers',
      url: `redis://127.0.0.1:${silentPort}`,
      code: 1,
      detail: new RegExp(`accepted the connection but did not answer within ${String(CHECK_MS)} ms`),
    },
    {
      name: 'a port that speaks another protocol',
      url: `redis://127.0.0.1:${httpPort}`,
      code: 2,
      detail: /not in the Redis protocol/,
    },
    {
      name: 'a refused port',
      url: `redis://127.0.0.1:${refusedPort}`,
      code: 1,
      detail: /connection refused \(ECONNREFUSED\)/,
    },
    {
      name: 'a wrong password',
      url: `redis://:wrong-${PASSWORD}@127.0.0.1:${secured.port}`,
      code: 2,
      detail: /authentication failed: WRONGPASS/,
    },
    {
      name: 'no password where one is required',
      url: `redis://127.0.0.1:${secured.port}`,
      code: 2,
      detail: /authentication failed: NOAUTH/,
    },
  ];

  it('names a broken source Redis for verify, snapshot and reconcile', async () => {
    for (const c of redisCases()) {
      for (const args of [['verify'], ['snapshot'], ['reconcile']]) {
        const port = new URL(c.url).port;
        const r = await runCli(base({ source: c.url }), args);
        expectReadable(r, c.code, new RegExp(`source Redis redis://[^ ]*127\\.0\\.0\\.1:${port}`), c.detail);
        expect({ case: c.name, args, hint: r.output }).toMatchObject({
          hint: expect.stringMatching(/redis\.url/) as unknown,
        });
      }
    }
  });

  it('names a broken queue Redis for replay, failures and snapshot', async () => {
    for (const c of redisCases()) {
      for (const args of [['replay'], ['failures'], ['snapshot']]) {
        const port = new URL(c.url).port;
        const r = await runCli(base({ queue: c.url }), args);
        expectReadable(r, c.code, new RegExp(`queue Redis redis://[^ ]*127\\.0\\.0\\.1:${port}`), c.detail);
      }
    }
  });

  it('names a broken Elasticsearch with status, type, reason and where the credentials came from', async () => {
    const fake = `http://127.0.0.1:${httpPort}`;
    const cases = [
      {
        answer: {
          status: 401,
          body: {
            error: {
              type: 'security_exception',
              reason:
                'unable to authenticate with provided credentials and anonymous access is not allowed for this request',
            },
            status: 401,
          },
        },
        code: 2,
        detail: /401 security_exception: unable to authenticate .* \(credentials from ELASTICSEARCH_API_KEY_FILE\)/,
      },
      {
        answer: {
          status: 403,
          body: {
            error: {
              type: 'security_exception',
              reason: 'action [cluster:monitor/health] is unauthorized for API key id [x]',
            },
            status: 403,
          },
        },
        code: 2,
        detail: /403 security_exception: action \[cluster:monitor\/health\] is unauthorized/,
      },
      {
        answer: {
          status: 503,
          body: { error: { type: 'master_not_discovered_exception', reason: null }, status: 503 },
        },
        code: 1,
        detail: /503 master_not_discovered_exception/,
      },
    ];
    for (const c of cases) {
      esAnswer = c.answer;
      for (const args of [['verify'], ['snapshot'], ['reconcile']]) {
        const r = await runCli(base({ es: fake }), args, { ELASTICSEARCH_API_KEY_FILE: keyFile });
        expectReadable(r, c.code, new RegExp(`Elasticsearch http://127\\.0\\.0\\.1:${httpPort}`), c.detail);
      }
    }
    for (const [url, code, detail] of [
      [`http://127.0.0.1:${refusedPort}`, 1, /connection refused/],
      [`http://127.0.0.1:${silentPort}`, 1, new RegExp(`no answer within ${String(CHECK_MS)} ms`)],
    ] as const) {
      const r = await runCli(base({ es: url }), ['verify']);
      expectReadable(r, code, new RegExp(`Elasticsearch http://127\\.0\\.0\\.1:${new URL(url).port}`), detail);
    }
  });

  it('run stops at once on what waiting cannot fix', async () => {
    esAnswer = {
      status: 401,
      body: { error: { type: 'security_exception', reason: 'unable to authenticate' }, status: 401 },
    };
    const es401 = await runCli(base({ es: `http://127.0.0.1:${httpPort}` }), ['run'], {
      ELASTICSEARCH_API_KEY_FILE: keyFile,
    });
    expectReadable(es401, 2, /Elasticsearch http:\/\/127\.0\.0\.1/, /401 security_exception/);
    const wrongPass = await runCli(base({ source: `redis://:nope-${PASSWORD}@127.0.0.1:${secured.port}` }), ['run']);
    expectReadable(
      wrongPass,
      2,
      new RegExp(`source Redis redis://:\\*\\*\\*@127\\.0\\.0\\.1:${secured.port}`),
      /WRONGPASS/,
    );
    // With the HTTP surface on, BullMQ's queue opens first: its errors must not print the AUTH either.
    const wrongQueue = await runCli(
      {
        ...base({ queue: `redis://:nope-${PASSWORD}@127.0.0.1:${secured.port}` }),
        http: { port: await getFreePort() },
      },
      ['run'],
    );
    expectReadable(
      wrongQueue,
      2,
      new RegExp(`queue Redis redis://:\\*\\*\\*@127\\.0\\.0\\.1:${secured.port}`),
      /WRONGPASS/,
    );
  });

  it('run says at once what it waits for, keeps waiting, and stops promptly on SIGTERM', async () => {
    const child = spawnCli(base({ source: `redis://127.0.0.1:${refusedPort}` }), ['run']);
    const started = Date.now();
    await waitFor(
      'the waiting message',
      async () => child.output(),
      (o) => o.includes('waiting for source Redis'),
      BOUND_MS,
    );
    expect(Date.now() - started).toBeLessThan(BOUND_MS);
    expect(child.output()).toContain(`127.0.0.1:${refusedPort}`);
    expect(child.exitCode).toBeNull();
    const stopAt = Date.now();
    child.kill('SIGTERM');
    expect(await exited(child)).toBe(0);
    expect(Date.now() - stopAt).toBeLessThan(BOUND_MS);
  });

  it('dashboard and serve stop on a wrong password and wait, saying so, for a dependency that is down', async () => {
    const wrong = await runCli(
      { ...base({ queue: `redis://:bad-${PASSWORD}@127.0.0.1:${secured.port}` }), http: { port: await getFreePort() } },
      ['dashboard'],
    );
    expectReadable(wrong, 2, new RegExp(`queue Redis redis://:\\*\\*\\*@127\\.0\\.0\\.1:${secured.port}`), /WRONGPASS/);
    const port = await getFreePort();
    const child = spawnCli({ ...base({ es: `http://127.0.0.1:${refusedPort}` }), http: { port } }, ['serve']);
    await waitFor(
      'serve to say what it waits for',
      async () => child.output(),
      (o) => o.includes('waiting for Elasticsearch'),
      BOUND_MS,
    );
    // It listens meanwhile: the liveness probe answers.
    expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);
    child.kill('SIGTERM');
    expect(await exited(child)).toBe(0);
  });

  it("names a refused index creation like a failed check (403 with the credentials' origin, exit 2)", async () => {
    esRoutes = (method, url) => {
      // The start-up detection of the engine (shared/sink/detect.ts): an Elasticsearch 8.
      if (url.startsWith('/_nodes/_local'))
        return { status: 200, body: { nodes: { n1: { version: '8.19.9', build_flavor: 'default' } } } };
      if (url.startsWith('/_cluster/health')) return { status: 200, body: { cluster_name: 'fake', status: 'green' } };
      // No alias and no index by that name yet: what a real engine answers before the first start.
      if (url.startsWith('/_alias/')) return { status: 404, body: { error: 'alias [x] missing', status: 404 } };
      if (method === 'HEAD') return { status: 404, body: {} };
      if (method === 'PUT')
        return {
          status: 403,
          body: {
            error: {
              type: 'security_exception',
              reason: 'action [indices:admin/create] is unauthorized for API key id [k1]',
            },
            status: 403,
          },
        };
      return undefined;
    };
    try {
      const r = await runCli(base({ es: `http://127.0.0.1:${httpPort}` }), ['snapshot'], {
        ELASTICSEARCH_API_KEY_FILE: keyFile,
      });
      expectReadable(
        r,
        2,
        new RegExp(`Elasticsearch http://127\\.0\\.0\\.1:${httpPort}`),
        /403 security_exception: action \[indices:admin\/create\] is unauthorized .*\(credentials from ELASTICSEARCH_API_KEY_FILE\)/,
      );
    } finally {
      esRoutes = undefined;
    }
  });

  it('keeps secrets out even at trace level, where the stack and cause are printed', async () => {
    const r = await runCli(
      base({ source: `redis://:wrong-${PASSWORD}@127.0.0.1:${secured.port}` }),
      ['--log-level', 'trace', 'verify'],
      { ELASTICSEARCH_API_KEY_FILE: keyFile },
    );
    expect(r.code).toBe(2);
    expect(r.output).toMatch(/authentication failed: WRONGPASS/);
    // The stack and its cause go out as one JSON line through the redacting logger.
    expect(r.output).toMatch(/"msg":"stopped by an error"/);
    expect(r.output).toMatch(/"cause":\{"type":"ReplyError","message":"WRONGPASS/);
    expect(r.output).not.toContain(PASSWORD);
    expect(r.output).not.toContain(API_KEY);
  });
});
