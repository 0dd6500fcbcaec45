import { Writable } from 'node:stream';
import nock from 'nock';
import { DependencyError } from '../../../../shared/platform/errors';
import { createLogger } from '../../../../shared/platform/logger';
import { DETECT_PATH, detectEngine } from '../../../../shared/sink/detect';

/** The engine probe's answers and failures that a real engine will not give on demand. */

const ORIGIN = 'http://engine.test:9200';
const PASSWORD = 'detect-secret-not-for-logs';
const NODES = '/_nodes/_local';

function connection(extra: { username?: string; password?: string } = {}): {
  url: string;
  requestTimeoutMs: number;
  username?: string;
  password?: string;
} {
  return { url: ORIGIN, requestTimeoutMs: 2000, ...extra };
}

const sourceOf = (field: string): string | undefined =>
  field === 'elasticsearch.username' ? 'env ELASTICSEARCH_USERNAME' : undefined;

async function failure(timeoutMs = 1000, lines: string[] = []): Promise<DependencyError> {
  const out = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(chunk.toString());
      done();
    },
  });
  const err = await detectEngine(
    connection({ username: 'app', password: PASSWORD }),
    timeoutMs,
    sourceOf,
    createLogger('trace', out),
  ).then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(err instanceof DependencyError)) throw new Error(`expected a DependencyError, got ${String(err)}`);
  return err;
}

beforeAll(() => nock.disableNetConnect());
afterEach(() => {
  nock.abortPendingRequests();
  nock.cleanAll();
});
afterAll(() => {
  nock.enableNetConnect();
  // nock patches the process's http module: another test file in this worker must not inherit it.
  nock.restore();
});

describe('detectEngine', () => {
  test('asks the one documented path and tells Elasticsearch from OpenSearch', async () => {
    expect(DETECT_PATH.startsWith(NODES)).toBe(true);
    nock(ORIGIN)
      .get(NODES)
      .query(true)
      .reply(
        200,
        { nodes: { a: { version: '8.19.9', build_flavor: 'default' } } },
        { 'x-elastic-product': 'Elasticsearch' },
      );
    await expect(detectEngine(connection(), 1000, sourceOf)).resolves.toEqual({
      product: 'elasticsearch',
      version: '8.19.9',
    });
    nock(ORIGIN)
      .get(NODES)
      .query(true)
      .reply(200, { nodes: { a: { version: '2.19.6' } } });
    await expect(detectEngine(connection(), 1000, sourceOf)).resolves.toEqual({
      product: 'opensearch',
      version: '2.19.6',
    });
  });

  test('401: ES_AUTH naming where the user came from; the password reaches no log line', async () => {
    nock(ORIGIN)
      .get(NODES)
      .query(true)
      .reply(401, { error: { type: 'security_exception', reason: 'unable to authenticate user [app]' } });
    const lines: string[] = [];
    const e = await failure(1000, lines);
    expect(e.code).toBe('ES_AUTH');
    expect(e.message).toContain('security_exception: unable to authenticate user [app]');
    expect(e.message).toContain('from ELASTICSEARCH_USERNAME');
    expect(lines.join('')).toContain('search engine request failed');
    expect(lines.join('') + e.message).not.toContain(PASSWORD);
  });

  test.each([
    [403, 'ES_FORBIDDEN'],
    [500, 'ES_UNAVAILABLE'],
    [503, 'ES_UNAVAILABLE'],
    [404, 'ES_PROTOCOL'],
    [400, 'ES_PROTOCOL'],
  ])('%i answers %s', async (status, code) => {
    nock(ORIGIN).get(NODES).query(true).reply(status, 'plain text reason\nsecond line');
    const e = await failure();
    expect(e.code).toBe(code);
    expect(e.message).toContain(`${String(status)} plain text reason`);
    expect(e.message).not.toContain('second line');
  });

  test('a 200 without a node version is not an engine', async () => {
    nock(ORIGIN).get(NODES).query(true).reply(200, { hello: 'world' });
    const e = await failure();
    expect(e.code).toBe('ES_PROTOCOL');
    expect(e.message).toContain('does not look like Elasticsearch or OpenSearch');
  });

  test('no answer within the bound: ES_TIMEOUT, in about the bound', async () => {
    nock(ORIGIN).get(NODES).query(true).delay(5000).reply(200, {});
    const started = Date.now();
    const e = await failure(300);
    expect(e.code).toBe('ES_TIMEOUT');
    expect(e.message).toContain('no answer within 300 ms');
    expect(Date.now() - started).toBeLessThan(4000);
  });

  test.each([
    ['connect ECONNREFUSED 127.0.0.1:9200', 'ES_UNREACHABLE', 'connection refused'],
    ['getaddrinfo ENOTFOUND engine.test', 'ES_UNREACHABLE', 'host not found'],
    ['socket hang up', 'ES_PROTOCOL', 'closed without an HTTP answer'],
  ])('a connection that fails with "%s" answers %s', async (message, code, detail) => {
    nock(ORIGIN).get(NODES).query(true).replyWithError(message);
    const e = await failure();
    expect(e.code).toBe(code);
    expect(e.message).toContain(detail);
    expect(e.cause).toBeInstanceOf(Error);
  });
});
