import { connect, type Socket } from 'node:net';
import { Redis } from 'ioredis';
import { documentId } from '../../shared/core/mapping/document';
import { bearer } from '../support/http';
import {
  exited,
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

const TOKEN = 'hardening-token-7c1e09b4';

/** The HTTP surface's limits and answers, on real servers. */
describe('a hardened HTTP surface', () => {
  let servers: TestServers;
  let redis: Redis;
  let pipeline: TestPipeline;
  let base: string;
  const longKey = `long:${'k'.repeat(300)}`;

  beforeAll(async () => {
    servers = await startServers('hardening');
    redis = new Redis(servers.source.url);
    await redis.set(longKey, 'a long name');
    await redis.set('', 'the empty key');
    await redis.set('big', 'x'.repeat(5000));
    const port = await getFreePort();
    base = `http://127.0.0.1:${port}`;
    pipeline = await startPipeline(
      testConfigInput(servers, {
        http: { port, search: { token: TOKEN }, viewer: { token: `${TOKEN}-viewer` }, maxConnections: 4 },
        search: { maxDocumentBytes: 2000 },
      }),
    );
    await waitInSync(pipeline.ctx);
  });

  afterAll(async () => {
    await pipeline?.stop();
    redis?.disconnect();
    await servers?.stop();
  });

  const get = (path: string, token = TOKEN, init: RequestInit = {}): Promise<Response> =>
    fetch(`${base}${path}`, {
      ...init,
      headers: { ...bearer(token), ...Object.fromEntries(new Headers(init.headers).entries()) },
    });

  it('reads every valid key through /doc: long ids, and the empty key by its id', async () => {
    const long = await get(`/doc/${servers.index}/${encodeURIComponent(longKey)}`);
    expect(long.status).toBe(200);
    expect(((await long.json()) as { doc: { value: string } }).doc.value).toBe('a long name');
    const emptyId = await get(`/doc/${servers.index}/`);
    expect(emptyId.status).toBe(404);
    expect(Object.keys((await emptyId.json()) as object)).toEqual(['error']);
    const emptyKey = await get(`/doc/${servers.index}/${encodeURIComponent(documentId(''))}`);
    expect(emptyKey.status).toBe(200);
    expect(((await emptyKey.json()) as { doc: { value: string } }).doc.value).toBe('the empty key');
    const big = await get(`/doc/${servers.index}/big`);
    expect(big.status).toBe(413);
    expect(await big.json()).toEqual({ error: expect.stringContaining('over search.maxDocumentBytes') });
  });

  it('sends the security headers on every answer, and the dashboard loads nothing from outside', async () => {
    const answers = [
      await fetch(`${base}/healthz`),
      await fetch(`${base}/readyz`),
      await get('/queues', `${TOKEN}-viewer`),
      await get(`/search/${servers.index}?q=name`),
      await get('/nowhere'),
      await fetch(`${base}/queues`),
    ];
    for (const res of answers) {
      expect({ url: res.url, csp: res.headers.get('content-security-policy') }).toEqual({
        url: res.url,
        csp: expect.stringContaining("frame-ancestors 'none'"),
      });
      expect(res.headers.get('x-frame-options')).toBe('DENY');
      expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    }
    // No operator credential: bull-board is read-only, so it shows no action it would refuse.
    const queues = (await (await get('/queues/api/queues', `${TOKEN}-viewer`)).json()) as {
      queues: { readOnlyMode: boolean }[];
    };
    expect(queues.queues.map((q) => q.readOnlyMode)).toEqual([true]);
    const html = await (await get('/queues', `${TOKEN}-viewer`)).text();
    expect(html).toContain('static/js/');
    expect(html).not.toMatch(/(src|href)="https?:\/\//);
  });

  it('answers every error in one shape, without stack traces or paths', async () => {
    const errors = [
      await get('/nowhere'),
      await fetch(`${base}/queues`),
      await get('/queues'),
      await get(`/search/${servers.index}?q=*leading`),
      await get(`/search/${servers.index}`, TOKEN, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{"query": ',
      }),
      await get(`/search/${servers.index}`, TOKEN, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ pad: 'x'.repeat(100_000) }),
      }),
      await get(`/search/${servers.index}`, TOKEN, {
        method: 'POST',
        headers: { 'content-type': 'text/xml' },
        body: '<q/>',
      }),
      await get('/queues/api/queues/nope/42', `${TOKEN}-viewer`),
    ];
    const bodies = await Promise.all(errors.map(async (r) => ({ status: r.status, body: await r.text() })));
    for (const { status, body } of bodies) {
      expect(status).toBeGreaterThanOrEqual(400);
      const parsed = JSON.parse(body) as Record<string, unknown>;
      expect({ status, keys: Object.keys(parsed), type: typeof parsed.error }).toEqual({
        status,
        keys: ['error'],
        type: 'string',
      });
      expect(body).not.toMatch(/node_modules|\/work\/|\bat \S+ \(|\.js:\d+/);
    }
    expect(bodies.map((b) => b.status)).toEqual([404, 401, 403, 400, 400, 413, 415, 404]);
  });

  it('limits connections', async () => {
    const sockets: Socket[] = [];
    const port = Number(new URL(base).port);
    try {
      for (let i = 0; i < 4; i++) {
        const s = connect(port, '127.0.0.1');
        await new Promise((r) => s.once('connect', r));
        sockets.push(s);
      }
      const extra = connect(port, '127.0.0.1');
      sockets.push(extra);
      const closed = await new Promise<boolean>((resolve) => {
        extra.once('close', () => resolve(true));
        extra.once('data', () => resolve(false));
        extra.once('connect', () => extra.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n'));
        setTimeout(() => resolve(false), 5000);
      });
      expect(closed).toBe(true);
    } finally {
      for (const s of sockets) s.destroy();
    }
    // Until the server has seen the sockets close, a request may still be turned away (or land on a
    // pooled keep-alive connection the server closed): that is a "not yet", not a failure.
    await waitFor(
      'connections released',
      () =>
        fetch(`${base}/healthz`).then(
          (r) => r.status,
          () => 0,
        ),
      (s) => s === 200,
    );
  });

  it('serve answers /readyz', async () => {
    const port = await getFreePort();
    const cli = spawnCli({ ...testConfigInput(servers), logLevel: 'info' }, ['--http-port', String(port), 'serve']);
    try {
      await waitFor(
        'serve to listen',
        async () => cli.output(),
        (o) => o.includes('search API listening') || cli.exitCode !== null,
        20000,
      );
      const ready = await fetch(`http://127.0.0.1:${port}/readyz`);
      expect(ready.status).toBe(200);
      expect(await ready.json()).toEqual({
        status: 'ready',
        checks: { 'source-redis': 'ok', 'queue-redis': 'ok', elasticsearch: 'ok' },
      });
    } finally {
      cli.kill('SIGTERM');
    }
    expect(await exited(cli)).toBe(0);
  });
});
