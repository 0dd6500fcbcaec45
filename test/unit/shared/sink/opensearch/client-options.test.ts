import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '../../../../../shared/platform/errors';
import { openSearchClientOptions } from '../../../../../shared/sink/opensearch';

const url = 'https://search.example.com:9200';

describe('OpenSearch client options', () => {
  test('an API key is sent as `Authorization: ApiKey <key>` (OpenSearch 3.7+ API keys)', () => {
    const options = openSearchClientOptions({ url, requestTimeoutMs: 1000, apiKey: 'os_secret' }, undefined);
    expect(options.headers).toEqual({ authorization: 'ApiKey os_secret' });
    expect(options.auth).toBeUndefined();
    expect(options.maxRetries).toBe(0);
  });

  test('basic auth and a CA file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'os-ca-'));
    const ca = join(dir, 'ca.pem');
    writeFileSync(ca, '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n');
    const options = openSearchClientOptions(
      { url, requestTimeoutMs: 1000, username: 'sync', password: 'pw', tls: { ca, rejectUnauthorized: false } },
      undefined,
    );
    expect(options.auth).toEqual({ username: 'sync', password: 'pw' });
    expect(options.ssl).toEqual({
      rejectUnauthorized: false,
      ca: expect.stringContaining('BEGIN CERTIFICATE') as string,
    });
  });

  test('a CA fingerprint is a configuration error naming the field', () => {
    const fingerprint = Array.from({ length: 32 }, () => 'AB').join(':');
    expect(() =>
      openSearchClientOptions(
        { url, requestTimeoutMs: 1000, tls: { caFingerprint: fingerprint, rejectUnauthorized: true } },
        undefined,
      ),
    ).toThrow(
      expect.objectContaining({
        issues: [expect.objectContaining({ field: 'elasticsearch.tls.caFingerprint' })],
      }) as Error,
    );
  });

  test.each([
    [{ apiKey: 'k' }, 'elasticsearch.apiKey'],
    [{ username: 'u', password: 'p' }, 'elasticsearch.username'],
  ])('AWS signing with another credential (%o) is a configuration error naming it', (credential, field) => {
    let thrown: unknown;
    try {
      openSearchClientOptions({ url, requestTimeoutMs: 1000, ...credential }, { region: 'eu-west-1', service: 'es' });
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(ConfigError);
    expect((thrown as ConfigError).issues.map((i) => i.field)).toEqual([field]);
    expect((thrown as ConfigError).message).not.toMatch(/\bk\b|\bp\b/);
  });

  test('AWS signing swaps in the signing connection and transport', () => {
    const plain = openSearchClientOptions({ url, requestTimeoutMs: 1000 }, { service: 'es' });
    expect(plain.Connection).toBeUndefined();
    const signed = openSearchClientOptions({ url, requestTimeoutMs: 1000 }, { region: 'eu-west-1', service: 'aoss' });
    expect(signed.Connection).toBeDefined();
    expect(signed.Transport).toBeDefined();
  });
});
