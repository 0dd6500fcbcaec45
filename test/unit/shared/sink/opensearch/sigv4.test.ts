import { createHash, createHmac } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import nock from 'nock';
import { createLogger } from '../../../../../shared/platform/logger';
import { createOpenSearchSink } from '../../../../../shared/sink/opensearch';

/**
 * Amazon OpenSearch Service: the requests the client sends carry a SigV4 signature that this
 * test computes on its own (canonical request, string to sign, signing key), from credentials
 * the AWS default provider chain reads from the environment and a fixed clock.
 */

const HOST = 'search-orders-abc123.eu-west-1.es.amazonaws.com';
const REGION = 'eu-west-1';
const NOW = new Date('2026-03-14T15:09:26Z');
const CREDENTIALS = {
  AWS_ACCESS_KEY_ID: 'AKIDEXAMPLESINKTEST',
  AWS_SECRET_ACCESS_KEY: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY',
  AWS_SESSION_TOKEN: 'session-token-for-the-test',
};

interface Captured {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
}

const sha256 = (data: string): string => createHash('sha256').update(data, 'utf8').digest('hex');
const hmac = (key: Buffer | string, data: string): Buffer => createHmac('sha256', key).update(data, 'utf8').digest();
const rfc3986 = (s: string): string =>
  encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

/** The signature AWS expects for this request, by the SigV4 specification. */
function expectedAuthorization(request: Captured, signedHeaders: string[], service: string): string {
  const url = new URL(request.path, `https://${HOST}`);
  const query = [...url.searchParams.entries()]
    .map(([k, v]) => [rfc3986(k), rfc3986(v)] as const)
    .sort(([a, x], [b, y]) => (a === b ? (x < y ? -1 : 1) : a < b ? -1 : 1))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
  const header = (name: string): string => {
    const value = request.headers[name];
    return (Array.isArray(value) ? value.join(',') : (value ?? '')).trim().replace(/\s+/g, ' ');
  };
  const canonicalRequest = [
    request.method,
    url.pathname,
    query,
    ...signedHeaders.map((name) => `${name}:${header(name)}`),
    '',
    signedHeaders.join(';'),
    sha256(request.body),
  ].join('\n');
  const amzDate = NOW.toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}/, '');
  const day = amzDate.slice(0, 8);
  const scope = `${day}/${REGION}/${service}/aws4_request`;
  const stringToSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha256(canonicalRequest)].join('\n');
  const signingKey = hmac(
    hmac(hmac(hmac(`AWS4${CREDENTIALS.AWS_SECRET_ACCESS_KEY}`, day), REGION), service),
    'aws4_request',
  );
  const signature = createHmac('sha256', signingKey).update(stringToSign, 'utf8').digest('hex');
  return `AWS4-HMAC-SHA256 Credential=${CREDENTIALS.AWS_ACCESS_KEY_ID}/${scope}, SignedHeaders=${signedHeaders.join(';')}, Signature=${signature}`;
}

function signedHeadersOf(authorization: string | undefined): string[] {
  const match = /SignedHeaders=([^,]+)/.exec(authorization ?? '');
  return match?.[1]?.split(';') ?? [];
}

describe('AWS SigV4 signing for Amazon OpenSearch Service', () => {
  const saved = new Map<string, string | undefined>();

  beforeAll(() => {
    // Only the environment provider may answer: no profile, no container or instance metadata.
    for (const name of [...Object.keys(CREDENTIALS), 'AWS_PROFILE', 'AWS_SHARED_CREDENTIALS_FILE', 'AWS_CONFIG_FILE']) {
      saved.set(name, process.env[name]);
    }
    Object.assign(process.env, CREDENTIALS);
    delete process.env.AWS_PROFILE;
    process.env.AWS_SHARED_CREDENTIALS_FILE = '/nonexistent/credentials';
    process.env.AWS_CONFIG_FILE = '/nonexistent/config';
    // Only the clock is fixed; timers stay real so the HTTP stack and nock run as usual.
    jest.useFakeTimers({
      now: NOW,
      doNotFake: [
        'hrtime',
        'nextTick',
        'performance',
        'queueMicrotask',
        'setImmediate',
        'clearImmediate',
        'setInterval',
        'clearInterval',
        'setTimeout',
        'clearTimeout',
      ],
    });
    nock.disableNetConnect();
  });

  afterAll(() => {
    jest.useRealTimers();
    nock.cleanAll();
    nock.enableNetConnect();
    // nock patches the process's http module: another test file in this worker must not inherit it.
    nock.restore();
    for (const [name, value] of saved) {
      // process.env is a map of names; Reflect.deleteProperty is how one is unset.
      if (value === undefined) Reflect.deleteProperty(process.env, name);
      else process.env[name] = value;
    }
  });

  const sinkFor = (service: 'es' | 'aoss') =>
    createOpenSearchSink({
      connection: { url: `https://${HOST}`, requestTimeoutMs: 5000 },
      engine: { product: 'opensearch', version: '2.19.0', distribution: 'amazon-opensearch-service' },
      logger: createLogger('silent'),
      sourceOf: () => undefined,
      aws: { region: REGION, service },
    });

  /** nock 15 hands the reply function the request as a fetch `Request`. */
  const capture = (method: 'GET' | 'POST', path: RegExp, reply: object): Captured[] => {
    const seen: Captured[] = [];
    nock(`https://${HOST}`)
      .intercept(path, method)
      .reply(async (request: Request) => {
        const url = new URL(request.url);
        seen.push({
          method: request.method,
          path: `${url.pathname}${url.search}`,
          headers: Object.fromEntries(request.headers),
          body: await request.text(),
        });
        return [200, reply, { 'content-type': 'application/json' }];
      });
    return seen;
  };

  test.each(['es', 'aoss'] as const)(
    'a bulk request (service %s) carries the signature the test computes',
    async (service) => {
      const seen = capture('POST', /^\/_bulk/, { errors: false, items: [{ index: { status: 201 } }] });
      const sink = sinkFor(service);
      const body = `${JSON.stringify({ index: { _index: 'orders', _id: 'a', version: 3, version_type: 'external' } })}\n${JSON.stringify({ key: 'order:1', db: 0 })}`;
      const outcomes = await sink.bulk([
        { op: 'index', index: 'orders', id: 'a', version: 3, body, bytes: Buffer.byteLength(body) },
      ]);
      await sink.close();
      expect(outcomes).toEqual([{ kind: 'done', result: 'indexed' }]);
      expect(seen).toHaveLength(1);
      const request = seen[0] as Captured;
      expect(request.body).toBe(`${body}\n`);
      expect(request.headers['x-amz-date']).toBe('20260314T150926Z');
      expect(request.headers['x-amz-content-sha256']).toBe(sha256(`${body}\n`));
      expect(request.headers['x-amz-security-token']).toBe(CREDENTIALS.AWS_SESSION_TOKEN);
      const authorization = request.headers.authorization;
      const signed = signedHeadersOf(authorization);
      expect(signed).toEqual(
        expect.arrayContaining(['host', 'x-amz-content-sha256', 'x-amz-date', 'x-amz-security-token']),
      );
      expect(signed).toEqual([...signed].sort());
      expect(authorization).toBe(expectedAuthorization(request, signed, service));
    },
  );

  test('a GET without a body (the health probe) is signed over the empty payload', async () => {
    const seen = capture('GET', /^\/_cluster\/health/, { status: 'green' });
    const sink = sinkFor('es');
    await sink.health(1000);
    await sink.close();
    const request = seen[0] as Captured;
    expect(request.body).toBe('');
    expect(request.headers['x-amz-content-sha256']).toBe(sha256(''));
    const signed = signedHeadersOf(request.headers.authorization);
    expect(request.headers.authorization).toBe(expectedAuthorization(request, signed, 'es'));
  });

  test('another secret would give another signature: the comparison is not vacuous', async () => {
    const seen = capture('GET', /^\/_cluster\/health/, { status: 'green' });
    const sink = sinkFor('es');
    await sink.health(1000);
    await sink.close();
    const request = seen[0] as Captured;
    const signed = signedHeadersOf(request.headers.authorization);
    expect(expectedAuthorization(request, signed, 'aoss')).not.toBe(request.headers.authorization);
  });
});
