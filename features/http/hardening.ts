import Fastify, { type FastifyInstance } from 'fastify';
import type { Logger } from '../../shared/platform/logger';
import { PUBLIC_PATHS, type HttpConfig } from './auth';
import { errorBody, isOwnErrorBody, sendError } from '../../shared/platform/http-errors';

/** Longest path parameter: a document id is up to 512 bytes, up to three characters each when percent-encoded. */
const MAX_PARAM_LENGTH = 2048;
/** Search bodies are small; nothing the surface accepts needs more. */
const BODY_LIMIT = 64 * 1024;
/** A client has this long to send its headers, and this long for the whole request. */
const HEADERS_TIMEOUT_MS = 10_000;
const REQUEST_TIMEOUT_MS = 30_000;
/** An idle keep-alive connection is closed after this. */
const KEEP_ALIVE_TIMEOUT_MS = 5_000;

/**
 * Every answer: nothing may frame it, sniff its type or load from elsewhere. The dashboard's
 * own scripts and styles come from this origin; React sets inline styles, hence 'unsafe-inline'
 * for styles only.
 */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy':
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'",
  'x-frame-options': 'DENY',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
};

/** bull-board's page asks Google for its web fonts; the dashboard loads nothing from outside the process. */
const EXTERNAL_STYLESHEET = /<link\b[^>]*href="https?:\/\/[^"]*"[^>]*>\s*/gi;

/**
 * A fastify instance with the limits every HTTP surface of the tool needs: header, body and
 * idle timeouts, a connection limit, long enough path parameters for any document id, the
 * security headers, and one error shape that never carries a stack trace or a path: a
 * library's error answer (fastify's, bull-board's) keeps its message only for 4xx, and only
 * when it names no file; 5xx answers say `internal error` and the details go to the log.
 */
export function createHardenedApp(http: HttpConfig, logger: Logger): FastifyInstance {
  const app = Fastify({
    logger: false,
    routerOptions: { maxParamLength: MAX_PARAM_LENGTH },
    bodyLimit: BODY_LIMIT,
    requestTimeout: REQUEST_TIMEOUT_MS,
    keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS,
    connectionTimeout: REQUEST_TIMEOUT_MS,
    return503OnClosing: true,
  });
  app.server.headersTimeout = HEADERS_TIMEOUT_MS;
  app.server.maxConnections = http.maxConnections;

  app.addHook('onSend', async (_request, reply, payload) => {
    for (const [name, value] of Object.entries(SECURITY_HEADERS)) reply.header(name, value);
    const type = String(reply.getHeader('content-type') ?? '');
    if (type.startsWith('text/html') && typeof payload === 'string') return payload.replace(EXTERNAL_STYLESHEET, '');
    return payload;
  });

  app.addHook('preSerialization', async (request, reply, payload: unknown) => {
    if (reply.statusCode < 400 || PUBLIC_PATHS.has(request.routeOptions.url ?? '')) return payload;
    if (typeof payload === 'object' && payload !== null && isOwnErrorBody(payload)) return payload;
    const p = (typeof payload === 'object' && payload !== null ? payload : {}) as {
      message?: unknown;
      error?: unknown;
    };
    const text = typeof p.message === 'string' ? p.message : typeof p.error === 'string' ? p.error : '';
    if (reply.statusCode >= 500 || text === '' || /(^|[\s(])\/[\w.-]+\/|\bat \S+ \(/.test(text)) {
      if (reply.statusCode >= 500)
        logger.warn(
          { status: reply.statusCode, path: request.routeOptions.url, detail: text },
          'http error answer replaced',
        );
      return errorBody(reply.statusCode >= 500 ? 'internal error' : 'bad request');
    }
    return errorBody(text);
  });

  app.setNotFoundHandler((_request, reply) => sendError(reply, 404, 'not found'));
  app.setErrorHandler((err: { statusCode?: number; message?: string }, request, reply) => {
    const status = typeof err.statusCode === 'number' && err.statusCode >= 400 ? err.statusCode : 500;
    if (status >= 500) logger.error({ err, path: request.routeOptions.url }, 'http request failed');
    return reply.code(status).send({ message: err.message ?? '' });
  });
  return app;
}
