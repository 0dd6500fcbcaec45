import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../../../shared/platform/config/load';
import { ConfigSchema, type SyncConfig } from '../../../../producers/capture/registry';
import { ConfigError } from '../../../../shared/platform/errors';
import { esClientOptions } from '../../../../shared/sink/elasticsearch/clients';
import { redisTlsOptions } from '../../../../shared/platform/tls';

const dir = mkdtempSync(join(tmpdir(), 'res-tls-config-'));
const pem = (name: string, text: string): string => {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
};
const FINGERPRINT = 'A1:B2:C3:D4:E5:F6:07:18:29:3A:4B:5C:6D:7E:8F:90:A1:B2:C3:D4:E5:F6:07:18:29:3A:4B:5C:6D:7E:8F:90';

function loadFile(content: Record<string, unknown>): ReturnType<typeof loadConfig<SyncConfig>> {
  const file = pem(`c-${Math.random().toString(36).slice(2)}.json`, JSON.stringify(content));
  return loadConfig(ConfigSchema, { config: file }, {});
}

function issues(content: Record<string, unknown>): string[] {
  try {
    loadFile(content);
  } catch (err) {
    if (err instanceof ConfigError) return err.issues.map((i) => `${i.field}: ${i.reason}`);
    throw err;
  }
  throw new Error('expected a ConfigError');
}

const base = { redis: { url: 'rediss://data:6380' }, elasticsearch: { url: 'https://es:9200' } };

describe('Elasticsearch TLS', () => {
  it('passes the CA file, the fingerprint and rejectUnauthorized to the client', () => {
    const ca = pem('es-ca.crt', '-----BEGIN CERTIFICATE-----\nes\n-----END CERTIFICATE-----\n');
    const { config } = loadFile({
      ...base,
      elasticsearch: { url: 'https://es:9200', apiKey: 'k', tls: { ca, caFingerprint: FINGERPRINT } },
    });
    const options = esClientOptions(config.elasticsearch);
    expect(options.tls).toEqual({
      ca: '-----BEGIN CERTIFICATE-----\nes\n-----END CERTIFICATE-----\n',
      rejectUnauthorized: true,
    });
    expect(options.caFingerprint).toBe(FINGERPRINT);
    expect(options.auth).toEqual({ apiKey: 'k' });
  });

  it('leaves TLS to the URL when no tls section is given', () => {
    const { config } = loadFile(base);
    const options = esClientOptions(config.elasticsearch);
    expect(options.tls).toBeUndefined();
    expect(options.caFingerprint).toBeUndefined();
  });

  it('rejects a malformed fingerprint and names the field; a missing CA file names it too', () => {
    expect(issues({ ...base, elasticsearch: { url: 'https://es:9200', tls: { caFingerprint: 'abc' } } })).toEqual([
      expect.stringMatching(/^elasticsearch\.tls\.caFingerprint: must be a SHA-256 fingerprint/),
    ]);
    const { config } = loadFile({
      ...base,
      elasticsearch: { url: 'https://es:9200', tls: { ca: join(dir, 'nope.crt') } },
    });
    expect(() => esClientOptions(config.elasticsearch)).toThrow(/elasticsearch\.tls\.ca: cannot read .*nope\.crt/);
  });
});

describe('Redis TLS', () => {
  it('reads CA, certificate and key files', () => {
    const ca = pem('ca.crt', 'CA');
    const cert = pem('client.crt', 'CERT');
    const key = pem('client.key', 'KEY');
    const { config } = loadFile({ ...base, redis: { url: 'rediss://data:6380', tls: { ca, cert, key } } });
    expect(redisTlsOptions(config.redis.tls, 'redis.tls')).toEqual({
      ca: 'CA',
      cert: 'CERT',
      key: 'KEY',
      rejectUnauthorized: true,
    });
    // The queue shares the source Redis here, so it shares its TLS settings too.
    expect(config.queue.tls).toEqual(config.redis.tls);
    expect(redisTlsOptions(undefined, 'queue.tls')).toBeUndefined();
  });

  it('needs cert with key, and names a missing file', () => {
    expect(issues({ ...base, queue: { url: 'rediss://q:6380', tls: { cert: 'c' } } })).toContain(
      'queue.tls: cert and key go together',
    );
    expect(() => redisTlsOptions({ ca: join(dir, 'missing.crt'), rejectUnauthorized: true }, 'redis.tls')).toThrow(
      /redis\.tls\.ca: cannot read .*missing\.crt/,
    );
  });
});

describe('producer lease and document size settings', () => {
  it('default to a 5 s lease renewed every second and 10 MiB documents', () => {
    const { config } = loadFile(base);
    expect(config.producer).toMatchObject({ leaseTtlMs: 5000, leaseRenewMs: 1000 });
    expect(config.worker.maxDocumentBytes).toBe(10 * 1024 * 1024);
  });

  it('refuse a renewal period that could let the lease lapse', () => {
    expect(issues({ ...base, producer: { leaseTtlMs: 2000, leaseRenewMs: 1500 } })).toEqual([
      expect.stringMatching(/^producer\.leaseRenewMs: leaseRenewMs must be at most half of leaseTtlMs/),
    ]);
  });
});
