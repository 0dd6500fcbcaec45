import { createHash, timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { AppConfig, HttpRole } from '../../shared/platform/config/schema';
import { ConfigError } from '../../shared/platform/errors';
import { sendError } from '../../shared/platform/http-errors';

export type HttpConfig = AppConfig['http'];

/** Probes for orchestrators: they carry no credentials and reveal nothing. */
export const PUBLIC_PATHS: ReadonlySet<string> = new Set(['/healthz', '/readyz']);

/** What a request may do: read the search API, read the dashboard and metrics, act on jobs. */
export type HttpRight = 'search' | 'view' | 'operate';

/** The single credential (`authToken`, `basicAuth`) predates the roles and keeps every right. */
const ROLE_RIGHTS: Record<HttpRole | 'all', readonly HttpRight[]> = {
  search: ['search'],
  viewer: ['view'],
  operator: ['view', 'operate'],
  all: ['search', 'view', 'operate'],
};

interface Credential {
  role: HttpRole | 'all';
  token?: string;
  basic?: { username: string; password: string };
}

/** Every configured credential with the role it stands for. */
export function credentials(http: HttpConfig): Credential[] {
  const list: Credential[] = [];
  if (http.authToken !== undefined || http.basicAuth !== undefined)
    list.push({ role: 'all', token: http.authToken, basic: http.basicAuth });
  for (const role of ['search', 'viewer', 'operator'] as const) {
    const c = http[role];
    if (c) list.push({ role, token: c.token, basic: c.basic });
  }
  return list;
}

export function authConfigured(http: HttpConfig): boolean {
  return credentials(http).length > 0;
}

/** Whether anyone may act on jobs: an operator credential, the single credential, or no credentials at all (loopback). */
export function operatorsAllowed(http: HttpConfig): boolean {
  const list = credentials(http);
  return list.length === 0 || list.some((c) => c.role === 'operator' || c.role === 'all');
}

/** For the start-up log line: which roles accept which schemes, never the values. */
export function authSchemes(http: HttpConfig): string {
  const list = credentials(http).map(
    (c) => `${c.role}:${[c.token !== undefined ? 'bearer' : '', c.basic ? 'basic' : ''].filter(Boolean).join('+')}`,
  );
  return list.length > 0 ? list.join(' ') : 'none';
}

export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost' || h === '::1') return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(h)?.[1];
  return mapped?.startsWith('127.') === true;
}

/** Shortest token or password accepted beyond loopback: `openssl rand -hex 16` gives 32. */
export const MIN_SECRET_LENGTH = 16;

/**
 * The dashboard can retry and delete jobs: it is never served beyond loopback without
 * credentials, nor with one short enough to guess.
 */
export function assertSafeExposure(http: HttpConfig): void {
  if (isLoopbackHost(http.host)) return;
  const fail = (field: string, reason: string): never => {
    throw new ConfigError(`invalid configuration:\n  - ${field}: ${reason}`, [{ field, reason }]);
  };
  if (!authConfigured(http)) {
    fail(
      'http.host',
      `serving on non-loopback host ${http.host} needs credentials: http.search, http.viewer, http.operator (HTTP_SEARCH_TOKEN, HTTP_VIEWER_TOKEN, HTTP_OPERATOR_TOKEN…) or http.authToken (HTTP_AUTH_TOKEN)`,
    );
  }
  const secrets: [string, string | undefined][] = [
    ['http.authToken', http.authToken],
    ['http.basicAuth.password', http.basicAuth?.password],
    ...(['search', 'viewer', 'operator'] as const).flatMap((role): [string, string | undefined][] => [
      [`http.${role}.token`, http[role]?.token],
      [`http.${role}.basic.password`, http[role]?.basic?.password],
    ]),
  ];
  for (const [field, secret] of secrets) {
    if (secret !== undefined && (secret.length < MIN_SECRET_LENGTH || new Set(secret).size < 4)) {
      fail(
        field,
        `is too weak to serve on non-loopback host ${http.host}: at least ${MIN_SECRET_LENGTH} characters, not one repeated (openssl rand -hex 24)`,
      );
    }
  }
}

/** Equal-length digests, so the comparison takes the same time whatever the input. */
export function safeEqual(given: string, expected: string): boolean {
  const digest = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();
  return timingSafeEqual(digest(given), digest(expected));
}

/** The rights an Authorization header carries: those of the credential it matches, or none. */
export function rightsOf(header: string | undefined, http: HttpConfig): ReadonlySet<HttpRight> {
  const rights = new Set<HttpRight>();
  if (!header) return rights;
  const space = header.indexOf(' ');
  if (space < 0) return rights;
  const scheme = header.slice(0, space).toLowerCase();
  const value = header.slice(space + 1).trim();
  let user: string | undefined;
  let pass: string | undefined;
  if (scheme === 'basic') {
    const decoded = Buffer.from(value, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) return rights;
    user = decoded.slice(0, colon);
    pass = decoded.slice(colon + 1);
  }
  // Every credential is compared, so timing does not tell which one (or which half) was close.
  for (const c of credentials(http)) {
    let ok = false;
    if (scheme === 'bearer' && c.token !== undefined) ok = safeEqual(value, c.token);
    if (scheme === 'basic' && c.basic !== undefined && user !== undefined && pass !== undefined) {
      const userOk = safeEqual(user, c.basic.username);
      const passOk = safeEqual(pass, c.basic.password);
      ok = userOk && passOk;
    }
    if (ok) for (const r of ROLE_RIGHTS[c.role]) rights.add(r);
  }
  return rights;
}

/** Whether an Authorization header matches any configured credential. */
export function authorized(header: string | undefined, http: HttpConfig): boolean {
  return rightsOf(header, http).size > 0;
}

/** What a route needs: nothing (probes), any valid credential (unknown paths), or a right. */
export type Requirement =
  { kind: 'public' } | { kind: 'any' } | { kind: 'right'; right: HttpRight; destructive: boolean };

export const DASHBOARD_PATH = '/queues';

/**
 * bull-board's job actions an operator may take: they re-run or drop finished jobs and never
 * forge or lose a change. Every other write of its API (add, edit data, pause, resume, empty,
 * obliterate, schedulers, concurrency…) is destructive, including any a later version adds.
 */
const OPERATOR_ACTIONS: ReadonlySet<string> = new Set(
  [
    'PUT /api/queues/:queueName/retry/:queueStatus',
    'PUT /api/queues/:queueName/promote',
    'PUT /api/queues/:queueName/clean/:queueStatus',
    'PUT /api/queues/:queueName/:jobId/retry',
    'PUT /api/queues/:queueName/:jobId/clean',
    'PUT /api/queues/:queueName/:jobId/promote',
  ].map((a) => a.replace(' ', ` ${DASHBOARD_PATH}`)),
);

/**
 * By the route fastify matched (its pattern, not the raw URL), so no spelling of a path
 * (encodings, double slashes, case) can move a request to a weaker rule.
 */
export function requirement(method: string, route: string | undefined): Requirement {
  if (route === undefined) return { kind: 'any' };
  if (PUBLIC_PATHS.has(route)) return { kind: 'public' };
  // The failure store names keys and reasons: for the people who watch the sync, not for search clients.
  if (route === '/metrics' || route === '/failures') return { kind: 'right', right: 'view', destructive: false };
  if (route.startsWith('/search/') || route.startsWith('/doc/'))
    return { kind: 'right', right: 'search', destructive: false };
  if (route === DASHBOARD_PATH || route.startsWith(`${DASHBOARD_PATH}/`)) {
    if (method === 'GET' || method === 'HEAD') return { kind: 'right', right: 'view', destructive: false };
    const destructive = !OPERATOR_ACTIONS.has(`${method} ${route}`);
    return { kind: 'right', right: 'operate', destructive };
  }
  return { kind: 'any' };
}

const ROLE_OF_RIGHT: Record<HttpRight, HttpRole> = { search: 'search', view: 'viewer', operate: 'operator' };

/**
 * A fastify onRequest hook: 401 without a valid credential, 403 when its role lacks the
 * right, 403 for destructive queue actions unless `http.allowDestructiveQueueActions`.
 * Without any credential configured (loopback only) every right is open but the destructive ones.
 */
export function authHook(
  http: HttpConfig,
): (request: FastifyRequest, reply: FastifyReply) => Promise<FastifyReply | undefined> {
  const configured = authConfigured(http);
  // Basic auth makes browsers prompt for credentials; a token-only set-up asks for a bearer token.
  const anyBasic = credentials(http).some((c) => c.basic !== undefined);
  const challenge = anyBasic ? 'Basic realm="redis-es-sync", charset="UTF-8"' : 'Bearer realm="redis-es-sync"';
  return async (request, reply) => {
    const need = requirement(request.method, request.routeOptions.url);
    if (need.kind === 'public') return undefined;
    if (configured) {
      const rights = rightsOf(request.headers.authorization, http);
      if (rights.size === 0) return sendError(reply.header('www-authenticate', challenge), 401, 'unauthorized');
      if (need.kind === 'right' && !rights.has(need.right))
        return sendError(reply, 403, `forbidden: needs the ${ROLE_OF_RIGHT[need.right]} role`);
    }
    if (need.kind === 'right' && need.destructive && !http.allowDestructiveQueueActions) {
      return sendError(
        reply,
        403,
        'forbidden: destructive queue actions are disabled (http.allowDestructiveQueueActions)',
      );
    }
    return undefined;
  };
}
