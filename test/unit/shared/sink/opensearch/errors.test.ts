import { Writable } from 'node:stream';
import nock from 'nock';
import { createLogger } from '../../../../../shared/platform/logger';
import { createOpenSearchSink } from '../../../../../shared/sink/opensearch';
import type { Sink } from '../../../../../shared/sink/port';

/** Failure paths of the OpenSearch adapter that a real server will not produce on demand. */

const ORIGIN = 'http://opensearch.test:9200';
const PASSWORD = 'hunter2-not-for-logs';

function sinkWith(lines: string[], connection: { username?: string; password?: string; apiKey?: string } = {}): Sink {
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(chunk.toString());
      done();
    },
  });
  return createOpenSearchSink({
    connection: { url: ORIGIN, requestTimeoutMs: 2000, ...connection },
    engine: { product: 'opensearch', version: '2.19.6' },
    logger: createLogger('debug', sink),
    sourceOf: (field) => (field === 'elasticsearch.username' ? 'env ELASTICSEARCH_USERNAME' : undefined),
  });
}

async function healthError(sink: Sink): Promise<unknown> {
  return sink.health(1000).then(
    () => {
      throw new Error('health succeeded');
    },
    (err: unknown) => err,
  );
}

beforeAll(() => nock.disableNetConnect());
afterEach(() => nock.cleanAll());
afterAll(() => {
  nock.enableNetConnect();
  // nock patches the process's http module: another test file in this worker must not inherit it.
  nock.restore();
});

describe('OpenSearch dependency errors', () => {
  test('401: ES_AUTH, naming where the user came from; the password reaches no log line', async () => {
    nock(ORIGIN)
      .get('/_cluster/health')
      .reply(401, { error: { type: 'security_exception', reason: 'Unauthorized' }, status: 401 });
    const lines: string[] = [];
    const sink = sinkWith(lines, { username: 'sync', password: PASSWORD });
    const err = await healthError(sink);
    const e = sink.dependencyError(err, { timeoutMs: 1000 });
    expect(e.code).toBe('ES_AUTH');
    expect(e.permanent).toBe(true);
    expect(e.message).toContain('401 security_exception: Unauthorized');
    expect(e.message).toContain('credentials of user sync from ELASTICSEARCH_USERNAME');
    expect(sink.isTransient(err)).toBe(false);
    await sink.close();
    const output = lines.join('');
    expect(output).toContain('opensearch request failed');
    expect(output).not.toContain(PASSWORD);
    expect(output).not.toContain(Buffer.from(`sync:${PASSWORD}`).toString('base64'));
  });

  test('an API key travels as a header and is in no log line', async () => {
    const key = 'os_apikey_for_the_test';
    nock(ORIGIN, { reqheaders: { authorization: `ApiKey ${key}` } })
      .get('/_cluster/health')
      .reply(403, { error: { type: 'security_exception', reason: 'no permissions for [cluster:monitor/health]' } });
    const lines: string[] = [];
    const sink = sinkWith(lines, { apiKey: key });
    const e = sink.dependencyError(await healthError(sink), {});
    expect(e.code).toBe('ES_FORBIDDEN');
    expect(e.message).toContain('no permissions for [cluster:monitor/health]');
    await sink.close();
    expect(lines.join('')).not.toContain(key);
  });

  test.each([
    [503, 'ES_UNAVAILABLE', true],
    [502, 'ES_UNAVAILABLE', true],
    [429, 'ES_ERROR', true],
    [404, 'ES_PROTOCOL', false],
    [405, 'ES_PROTOCOL', false],
    [400, 'ES_ERROR', false],
  ])('status %i: %s, transient %s', async (status, code, transient) => {
    nock(ORIGIN)
      .get('/_cluster/health')
      .reply(status, { error: { type: 'some_exception', reason: 'because' } });
    const sink = sinkWith([]);
    const err = await healthError(sink);
    expect(sink.dependencyError(err, {}).code).toBe(code);
    expect(sink.isTransient(err)).toBe(transient);
    expect(sink.describeError(err)).toBe(`${status} some_exception: because`);
    await sink.close();
  });

  test('a host that does not resolve: ES_UNREACHABLE naming it', async () => {
    nock(ORIGIN).get('/_cluster/health').replyWithError('getaddrinfo ENOTFOUND opensearch.test');
    const sink = sinkWith([]);
    const err = await healthError(sink);
    const e = sink.dependencyError(err, {});
    expect(e.code).toBe('ES_UNREACHABLE');
    expect(e.message).toContain('host not found');
    expect(sink.isTransient(err)).toBe(true);
    await sink.close();
  });

  test('a certificate failure: ES_TLS', async () => {
    nock(ORIGIN).get('/_cluster/health').replyWithError('unable to verify the first certificate');
    const sink = sinkWith([]);
    expect(sink.dependencyError(await healthError(sink), {}).code).toBe('ES_TLS');
    await sink.close();
  });

  test('a bulk answered without items: every operation is retried, none is assumed done', async () => {
    nock(ORIGIN)
      .post(/^\/_bulk/)
      .reply(200, {});
    const sink = sinkWith([]);
    const body = JSON.stringify({ delete: { _index: 'i', _id: 'a', version: 2, version_type: 'external' } });
    expect(
      await sink.bulk([{ op: 'delete', index: 'i', id: 'a', version: 2, body, bytes: Buffer.byteLength(body) }]),
    ).toEqual([{ kind: 'retry', reason: 'the bulk answer has no item for this operation' }]);
    await sink.close();
  });

  test('bulk items: 429 and 5xx retry, other errors are rejected with type, reason and cause', async () => {
    nock(ORIGIN)
      .post(/^\/_bulk/)
      .reply(200, {
        items: [
          { index: { status: 429, error: { type: 'es_rejected_execution_exception', reason: 'queue full' } } },
          { index: { status: 503, error: { type: 'unavailable_shards_exception', reason: 'primary not active' } } },
          {
            index: {
              status: 400,
              error: {
                type: 'mapper_parsing_exception',
                reason: 'failed to parse field [n]',
                caused_by: { type: 'number_format_exception', reason: 'For input string: "x"' },
              },
            },
          },
        ],
      });
    const sink = sinkWith([]);
    const op = (id: string) => {
      const body = `${JSON.stringify({ index: { _index: 'i', _id: id, version: 1, version_type: 'external' } })}\n{}`;
      return { op: 'index' as const, index: 'i', id, version: 1, body, bytes: Buffer.byteLength(body) };
    };
    expect(await sink.bulk([op('a'), op('b'), op('c')])).toEqual([
      { kind: 'retry', reason: '429 es_rejected_execution_exception: queue full' },
      { kind: 'retry', reason: '503 unavailable_shards_exception: primary not active' },
      {
        kind: 'rejected',
        reason:
          '400 mapper_parsing_exception: failed to parse field [n] (caused by number_format_exception: For input string: "x")',
      },
    ]);
    await sink.close();
  });
});
