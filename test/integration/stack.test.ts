import { connect } from 'node:net';
import Redis from 'ioredis';
import { esUrl, uniqueIndex } from '../support/elasticsearch';
import { getFreePort } from '../support/ports';
import { startRedis, type RedisServerHandle } from '../support/redis-server';

/** Resolves 'refused' when nothing listens on the port, 'connected' otherwise. */
function probe(port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect({ port, host: '127.0.0.1' });
    socket.setTimeout(2000, () => {
      socket.destroy();
      resolve('timeout');
    });
    socket.once('connect', () => {
      socket.destroy();
      resolve('connected');
    });
    socket.once('error', (err: NodeJS.ErrnoException) => {
      socket.destroy();
      resolve(err.code === 'ECONNREFUSED' ? 'refused' : String(err.code));
    });
  });
}

async function getJson(path: string): Promise<{ status: number; body: unknown }> {
  const res = await fetch(`${esUrl()}${path}`, { signal: AbortSignal.timeout(10_000) });
  const text = await res.text();
  return { status: res.status, body: text === '' ? undefined : (JSON.parse(text) as unknown) };
}

describe('elasticsearch from the dev stack', () => {
  it('is an 8.19.x node', async () => {
    // The integ-test-zip distribution has no `rest-root` module, so `GET /` (and the
    // client's info()/ping()) answer 405; the node version comes from the nodes info API.
    const { status, body } = await getJson('/_nodes/_local?filter_path=nodes.*.version');
    expect(status).toBe(200);
    const nodes = (body as { nodes: Record<string, { version: string }> }).nodes;
    const versions = Object.values(nodes).map((n) => n.version);
    expect(versions).toHaveLength(1);
    expect(versions[0]).toMatch(/^8\.19\.\d+$/);
  });

  it('answers GET / with 405 (integ-test-zip lacks the rest-root module)', async () => {
    // Documents a real limitation of the test distribution: code must not rely on
    // `GET /`, `HEAD /`, client.info() or client.ping() as a health check.
    const res = await fetch(`${esUrl()}/`, { signal: AbortSignal.timeout(10_000) });
    await res.text();
    expect(res.status).toBe(405);
    expect(res.headers.get('x-elastic-product')).toBe('Elasticsearch');
  });

  it('is healthy and indexes/searches documents', async () => {
    const health = await getJson('/_cluster/health?wait_for_status=yellow&timeout=30s');
    expect(health.status).toBe(200);
    expect(['yellow', 'green']).toContain((health.body as { status: string }).status);

    const index = uniqueIndex('stack');
    expect(index).toBe(index.toLowerCase());
    const put = await fetch(`${esUrl()}/${index}/_doc/1?refresh=true`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ hello: 'world' }),
    });
    expect(put.status).toBe(201);
    const got = await getJson(`/${index}/_doc/1`);
    expect(got.body).toMatchObject({ found: true, _source: { hello: 'world' } });
    const del = await fetch(`${esUrl()}/${index}`, { method: 'DELETE' });
    expect(del.status).toBe(200);
  });
});

describe('startRedis()', () => {
  let server: RedisServerHandle | undefined;
  let client: Redis | undefined;

  afterEach(async () => {
    client?.disconnect();
    client = undefined;
    await server?.stop();
    server = undefined;
  });

  it('starts a server that stores values and has the requested keyspace notifications', async () => {
    server = await startRedis({ notifyKeyspaceEvents: 'KEA' });
    expect(server.url).toBe(`redis://127.0.0.1:${server.port}`);
    client = new Redis(server.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
    await client.connect();

    await client.set('stack:test', 'value-1');
    expect(await client.get('stack:test')).toBe('value-1');

    const [, flags] = (await client.config('GET', 'notify-keyspace-events')) as [string, string];
    // Redis normalises the flag string ('KEA' is reported as 'AKE').
    expect(Array.from(flags).sort().join('')).toBe(Array.from('KEA').sort().join(''));

    const [, save] = (await client.config('GET', 'save')) as [string, string];
    expect(save).toBe('');
    const [, appendonly] = (await client.config('GET', 'appendonly')) as [string, string];
    expect(appendonly).toBe('no');
  });

  it('leaves notifications off by default and passes extra args through', async () => {
    server = await startRedis({ args: ['--maxmemory-policy', 'noeviction'] });
    client = new Redis(server.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
    await client.connect();
    expect(await client.config('GET', 'notify-keyspace-events')).toEqual(['notify-keyspace-events', '']);
    expect(await client.config('GET', 'maxmemory-policy')).toEqual(['maxmemory-policy', 'noeviction']);
  });

  it('stop() terminates the server so its port refuses connections', async () => {
    const handle = await startRedis();
    server = handle;
    expect(await probe(handle.port)).toBe('connected');
    await handle.stop();
    expect(await probe(handle.port)).toBe('refused');
    await handle.stop(); // idempotent
  });

  it('gives every server its own port', async () => {
    const [a, b] = await Promise.all([startRedis(), startRedis()]);
    try {
      expect(a.port).not.toBe(b.port);
    } finally {
      await Promise.all([a.stop(), b.stop()]);
    }
  });
});

describe('getFreePort()', () => {
  it('returns a bindable loopback port', async () => {
    const port = await getFreePort();
    expect(port).toBeGreaterThan(0);
    expect(port).toBeLessThan(65536);
    expect(await probe(port)).toBe('refused');
  });
});
