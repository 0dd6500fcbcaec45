import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../../../shared/platform/config/load';
import { ConfigSchema } from '../../../../producers/capture/registry';
import { ConfigError } from '../../../../shared/platform/errors';
import {
  assertSafeExposure,
  authorized,
  isLoopbackHost,
  requirement,
  rightsOf,
  type HttpConfig,
} from '../../../../features/http/auth';
import { matchesFilter, parseReplayFilter } from '../../../../features/maintenance/replay';
import type { SyncJobData } from '../../../../shared/core/queue';

const BASE_ENV = { REDIS_URL: 'redis://data.example:6379/0', ELASTICSEARCH_URL: 'http://es.example:9200' };

describe('http configuration', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'res-http-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('is off on loopback by default', () => {
    expect(loadConfig(ConfigSchema, {}, BASE_ENV).config.http).toEqual({
      port: 0,
      host: '127.0.0.1',
      maxConnections: 512,
      allowDestructiveQueueActions: false,
    });
  });

  it('reads port, host and credentials from the environment, secrets also from files', () => {
    const secret = join(dir, 'token');
    writeFileSync(secret, 'from-a-file\n');
    const { config } = loadConfig(
      ConfigSchema,
      {},
      {
        ...BASE_ENV,
        HTTP_PORT: '8080',
        HTTP_HOST: '0.0.0.0',
        HTTP_AUTH_TOKEN_FILE: secret,
        HTTP_BASIC_USERNAME: 'ops',
        HTTP_BASIC_PASSWORD: 'pw',
      },
    );
    expect(config.http).toEqual({
      port: 8080,
      host: '0.0.0.0',
      authToken: 'from-a-file',
      basicAuth: { username: 'ops', password: 'pw' },
      maxConnections: 512,
      allowDestructiveQueueActions: false,
    });
  });

  it('lets the flags win over the environment', () => {
    const { config } = loadConfig(
      ConfigSchema,
      { httpPort: '9100', httpHost: '::1' },
      { ...BASE_ENV, HTTP_PORT: '8080', HTTP_HOST: '0.0.0.0' },
    );
    expect(config.http).toMatchObject({ port: 9100, host: '::1' });
  });

  it('names the field and its source when a value is invalid', () => {
    const err = (() => {
      try {
        loadConfig(ConfigSchema, {}, { ...BASE_ENV, HTTP_PORT: 'eighty', HTTP_BASIC_USERNAME: 'ops' });
      } catch (e) {
        return e as ConfigError;
      }
      throw new Error('expected a ConfigError');
    })();
    expect(err).toBeInstanceOf(ConfigError);
    expect(err.issues.map((i) => i.field).sort()).toEqual(['http.basicAuth.password', 'http.port']);
    expect(err.message).toContain('http.port (from env HTTP_PORT)');
    expect(err.message).toContain('http.basicAuth.password: is required: set HTTP_BASIC_PASSWORD');
  });
});

describe('http exposure and credentials', () => {
  const open: HttpConfig = { port: 3000, host: '0.0.0.0', maxConnections: 512, allowDestructiveQueueActions: false };

  it('tells loopback addresses from the others', () => {
    for (const host of ['127.0.0.1', '127.1.2.3', 'localhost', '::1', '[::1]', '::ffff:127.0.0.1'])
      expect({ host, loopback: isLoopbackHost(host) }).toEqual({ host, loopback: true });
    for (const host of ['0.0.0.0', '::', '10.0.0.5', 'dashboard.example', '::ffff:10.0.0.1'])
      expect({ host, loopback: isLoopbackHost(host) }).toEqual({ host, loopback: false });
  });

  it('refuses a non-loopback host without credentials, naming http.host', () => {
    expect(() => assertSafeExposure(open)).toThrow(ConfigError);
    try {
      assertSafeExposure(open);
    } catch (err) {
      expect((err as ConfigError).issues).toEqual([expect.objectContaining({ field: 'http.host' })]);
    }
    const strong = '3b9f0c2e7a41d8566e0f';
    expect(() => assertSafeExposure({ ...open, authToken: strong })).not.toThrow();
    expect(() => assertSafeExposure({ ...open, basicAuth: { username: 'u', password: strong } })).not.toThrow();
    expect(() => assertSafeExposure({ ...open, viewer: { token: strong } })).not.toThrow();
    expect(() => assertSafeExposure({ ...open, host: '127.0.0.1', viewer: { token: 'v' } })).not.toThrow();
    expect(() => assertSafeExposure({ ...open, host: '127.0.0.1' })).not.toThrow();
  });

  it('refuses weak secrets beyond loopback, naming the field', () => {
    const fields = (http: HttpConfig): string[] => {
      try {
        assertSafeExposure(http);
      } catch (err) {
        return (err as ConfigError).issues.map((i) => i.field);
      }
      return [];
    };
    expect(fields({ ...open, authToken: 'short' })).toEqual(['http.authToken']);
    expect(fields({ ...open, operator: { basic: { username: 'ops', password: 'aaaaaaaaaaaaaaaaaaaaaaaa' } } })).toEqual(
      ['http.operator.basic.password'],
    );
    expect(fields({ ...open, search: { token: '3b9f0c2e7a41d8566e0f' }, viewer: { token: 'viewer' } })).toEqual([
      'http.viewer.token',
    ]);
  });

  it('accepts the configured bearer token or basic credentials, and nothing else', () => {
    const http: HttpConfig = { ...open, authToken: 'tok', basicAuth: { username: 'ops', password: 'p:w' } };
    const basic = (s: string): string => `Basic ${Buffer.from(s).toString('base64')}`;
    expect(authorized('Bearer tok', http)).toBe(true);
    expect(authorized('bearer tok', http)).toBe(true);
    expect(authorized(basic('ops:p:w'), http)).toBe(true);
    for (const header of [
      undefined,
      '',
      'Bearer',
      'Bearer tok2',
      'Bearer to',
      basic('ops:p'),
      basic('op:p:w'),
      basic('opsp:w'),
      'Token tok',
    ]) {
      expect({ header, ok: authorized(header, http) }).toEqual({ header, ok: false });
    }
    expect(authorized('Bearer tok', { ...open, basicAuth: { username: 'ops', password: 'p:w' } })).toBe(false);
  });
});

describe('http roles', () => {
  const open: HttpConfig = { port: 3000, host: '127.0.0.1', maxConnections: 512, allowDestructiveQueueActions: false };
  const roles: HttpConfig = {
    ...open,
    search: { token: 'search-tok' },
    viewer: { token: 'viewer-tok', basic: { username: 'view', password: 'view-pw' } },
    operator: { basic: { username: 'ops', password: 'ops-pw' } },
  };
  const basic = (s: string): string => `Basic ${Buffer.from(s).toString('base64')}`;

  it('reads each role from the environment', () => {
    const { config } = loadConfig(
      ConfigSchema,
      {},
      {
        ...BASE_ENV,
        HTTP_SEARCH_TOKEN: 's',
        HTTP_VIEWER_TOKEN: 'v',
        HTTP_OPERATOR_USERNAME: 'ops',
        HTTP_OPERATOR_PASSWORD: 'o',
        HTTP_ALLOW_DESTRUCTIVE_QUEUE_ACTIONS: 'true',
      },
    );
    expect(config.http).toMatchObject({
      search: { token: 's' },
      viewer: { token: 'v' },
      operator: { basic: { username: 'ops', password: 'o' } },
      allowDestructiveQueueActions: true,
    });
  });

  it('refuses ambiguous set-ups, naming the field', () => {
    const fields = (env: Record<string, string>): string[] => {
      try {
        loadConfig(ConfigSchema, {}, { ...BASE_ENV, ...env });
      } catch (e) {
        return (e as ConfigError).issues.map((i) => i.field).sort();
      }
      return [];
    };
    expect(fields({ HTTP_AUTH_TOKEN: 'a', HTTP_SEARCH_TOKEN: 's' })).toEqual(['http.authToken']);
    expect(fields({ HTTP_SEARCH_TOKEN: 'same', HTTP_OPERATOR_TOKEN: 'same' })).toEqual(['http.operator.token']);
    expect(
      fields({
        HTTP_VIEWER_USERNAME: 'u',
        HTTP_VIEWER_PASSWORD: 'a',
        HTTP_OPERATOR_USERNAME: 'u',
        HTTP_OPERATOR_PASSWORD: 'b',
      }),
    ).toEqual(['http.operator.basic.username']);
    expect(fields({ HTTP_VIEWER_TOKEN: 'v', HTTP_ALLOW_DESTRUCTIVE_QUEUE_ACTIONS: 'true' })).toEqual([
      'http.allowDestructiveQueueActions',
    ]);
    expect(
      fields({
        HTTP_SEARCH_TOKEN: 's',
        HTTP_VIEWER_TOKEN: 'v',
        HTTP_OPERATOR_TOKEN: 'o',
        HTTP_ALLOW_DESTRUCTIVE_QUEUE_ACTIONS: 'true',
      }),
    ).toEqual([]);
  });

  it("gives each credential only its role's rights", () => {
    expect([...rightsOf('Bearer search-tok', roles)]).toEqual(['search']);
    expect([...rightsOf('Bearer viewer-tok', roles)]).toEqual(['view']);
    expect([...rightsOf(basic('view:view-pw'), roles)]).toEqual(['view']);
    expect([...rightsOf(basic('ops:ops-pw'), roles)].sort()).toEqual(['operate', 'view']);
    for (const header of [
      undefined,
      'Bearer ops-pw',
      basic('ops:view-pw'),
      basic('view:ops-pw'),
      'Bearer search-to',
      basic('search-tok:'),
    ]) {
      expect({ header, rights: [...rightsOf(header, roles)] }).toEqual({ header, rights: [] });
    }
    expect([...rightsOf('Bearer t', { ...open, authToken: 't' })].sort()).toEqual(['operate', 'search', 'view']);
  });

  it('classifies routes by the pattern fastify matched, destructive by default', () => {
    expect(requirement('GET', '/readyz')).toEqual({ kind: 'public' });
    expect(requirement('GET', undefined)).toEqual({ kind: 'any' });
    expect(requirement('GET', '/search/:index')).toMatchObject({ right: 'search' });
    expect(requirement('POST', '/search/:index')).toMatchObject({ right: 'search' });
    expect(requirement('GET', '/doc/:index/:id')).toMatchObject({ right: 'search' });
    expect(requirement('GET', '/metrics')).toMatchObject({ right: 'view' });
    expect(requirement('GET', '/queues/api/queues')).toMatchObject({ right: 'view', destructive: false });
    expect(requirement('PUT', '/queues/api/queues/:queueName/:jobId/retry')).toEqual({
      kind: 'right',
      right: 'operate',
      destructive: false,
    });
    expect(requirement('PUT', '/queues/api/queues/:queueName/clean/:queueStatus')).toEqual({
      kind: 'right',
      right: 'operate',
      destructive: false,
    });
    for (const [method, route] of [
      ['POST', '/queues/api/queues/:queueName/add'],
      ['PUT', '/queues/api/queues/:queueName/empty'],
      ['PUT', '/queues/api/queues/:queueName/obliterate'],
      ['PUT', '/queues/api/queues/:queueName/pause'],
      ['PUT', '/queues/api/queues/pause'],
      ['PATCH', '/queues/api/queues/:queueName/:jobId/update-data'],
      ['DELETE', '/queues/api/some-future-route'],
    ] as const) {
      expect({ route, need: requirement(method, route) }).toEqual({
        route,
        need: { kind: 'right', right: 'operate', destructive: true },
      });
    }
  });
});

describe('replay filters', () => {
  const job = (
    keys: string[],
    failedReason: string,
    finishedOn: number,
  ): { data: SyncJobData; failedReason: string; finishedOn: number } => ({
    data: { db: 0, keys, v: 1, t: 0, src: 'snapshot' },
    failedReason,
    finishedOn,
  });
  const t0 = Date.parse('2026-11-26T12:00:00Z');

  it('requires every given criterion', () => {
    const f = parseReplayFilter({
      reason: 'cluster_block',
      pattern: 'order:*',
      since: '2026-11-26T11:00:00Z',
      until: '2026-11-26T13:00:00Z',
    });
    expect(matchesFilter(job(['order:1'], '403 cluster_block_exception', t0), f)).toBe(true);
    expect(matchesFilter(job(['user:1', 'order:2'], '403 cluster_block_exception', t0), f)).toBe(true);
    expect(matchesFilter(job(['user:1'], '403 cluster_block_exception', t0), f)).toBe(false);
    expect(matchesFilter(job(['order:1'], '400 document_parsing_exception', t0), f)).toBe(false);
    expect(matchesFilter(job(['order:1'], '403 cluster_block_exception', t0 + 2 * 3600_000), f)).toBe(false);
    expect(matchesFilter(job(['order:1'], '403 cluster_block_exception', t0 - 2 * 3600_000), f)).toBe(false);
    expect(matchesFilter(job(['anything'], 'any reason', t0), parseReplayFilter({}))).toBe(true);
  });

  it('names the flag of a bad value', () => {
    expect(() => parseReplayFilter({ reason: '(' })).toThrow(/--reason: is not a valid regular expression/);
    expect(() => parseReplayFilter({ until: 'soon' })).toThrow(/--until: is not a date\/time/);
  });
});
