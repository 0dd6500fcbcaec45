import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import type { RedisTlsConfig } from './config/schema';
import { ConfigError, errorMessage } from './errors';

/** Reads a PEM file named in the configuration; a missing file is a configuration error naming the field. */
export function readPem(path: string, field: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`invalid configuration:\n  - ${field}: cannot read ${path}: ${errorMessage(err)}`, [
      { field, reason: `cannot read ${path}: ${errorMessage(err)}` },
    ]);
  }
}

/** Node TLS options for a Redis connection, or undefined to leave it to the URL (`rediss://` = system CAs). */
export function redisTlsOptions(tls: RedisTlsConfig | undefined, field: string): ConnectionOptions | undefined {
  if (!tls) return undefined;
  return {
    ...(tls.ca ? { ca: readPem(tls.ca, `${field}.ca`) } : {}),
    ...(tls.cert ? { cert: readPem(tls.cert, `${field}.cert`) } : {}),
    ...(tls.key ? { key: readPem(tls.key, `${field}.key`) } : {}),
    rejectUnauthorized: tls.rejectUnauthorized,
  };
}
