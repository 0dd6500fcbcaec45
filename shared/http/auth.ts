import { createHash, timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { AppConfig } from '../config/schema';
import { ConfigError } from '../errors';

export type HttpConfig = AppConfig['http'];

/** Probes for orchestrators: they carry no credentials and reveal nothing. */
export const PUBLIC_PATHS: ReadonlySet<string> = new Set(['/healthz', '/readyz']);

export function authConfigured(http: HttpConfig): boolean {
  return http.authToken !== undefined || http.basicAuth !== undefined;
}

/** For the start-up log line: which credentials are accepted, never their values. */
export function authSchemes(http: HttpConfig): string {
  const schemes = [http.authToken !== undefined ? 'bearer' : '', http.basicAuth !== undefined ? 'basic' : ''].filter(Boolean);
  return schemes.length > 0 ? schemes.join('+') : 'none';
}

export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost' || h === '::1') return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(h);
  return mapped !== null && mapped[1].startsWith('127.');
}

/** The dashboard can retry and delete jobs: it is never served beyond loopback without credentials. */
export function assertSafeExposure(http: HttpConfig): void {
  if (isLoopbackHost(http.host) || authConfigured(http)) return;
  const reason = `serving on non-loopback host ${http.host} needs http.authToken (HTTP_AUTH_TOKEN) or http.basicAuth (HTTP_BASIC_USERNAME, HTTP_BASIC_PASSWORD)`;
  throw new ConfigError(`invalid configuration:\n  - http.host: ${reason}`, [{ field: 'http.host', reason }]);
}

/** Equal-length digests, so the comparison takes the same time whatever the input. */
export function safeEqual(given: string, expected: string): boolean {
  const digest = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();
  return timingSafeEqual(digest(given), digest(expected));
}

/** Whether an Authorization header satisfies the configured token or basic credentials. */
export function authorized(header: string | undefined, http: HttpConfig): boolean {
  if (!header) return false;
  const space = header.indexOf(' ');
  if (space < 0) return false;
  const scheme = header.slice(0, space).toLowerCase();
  const value = header.slice(space + 1).trim();
  if (scheme === 'bearer' && http.authToken !== undefined) return safeEqual(value, http.authToken);
  if (scheme === 'basic' && http.basicAuth !== undefined) {
    const decoded = Buffer.from(value, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) return false;
    // Both halves are always compared, so timing does not tell which one was wrong.
    const userOk = safeEqual(decoded.slice(0, colon), http.basicAuth.username);
    const passOk = safeEqual(decoded.slice(colon + 1), http.basicAuth.password);
    return userOk && passOk;
  }
  return false;
}

/** A fastify onRequest hook enforcing the configured credentials, or undefined when none are. */
export function authHook(http: HttpConfig): ((request: FastifyRequest, reply: FastifyReply) => Promise<FastifyReply | undefined>) | undefined {
  if (!authConfigured(http)) return undefined;
  // Basic auth makes browsers prompt for credentials; a token-only set-up asks for a bearer token.
  const challenge = http.basicAuth !== undefined ? 'Basic realm="redis-es-sync", charset="UTF-8"' : 'Bearer realm="redis-es-sync"';
  return async (request, reply) => {
    const path = request.url.split('?', 1)[0];
    if (PUBLIC_PATHS.has(path) || authorized(request.headers.authorization, http)) return undefined;
    return reply.code(401).header('www-authenticate', challenge).send({ error: 'unauthorized' });
  };
}
