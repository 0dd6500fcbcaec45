import { firstLine } from '../platform/dependencies';
import { DependencyError, type DependencyErrorCode } from '../platform/errors';

/**
 * What a failed call to a search engine means for an operator, whatever the engine: the codes,
 * details and hints are the same; each adapter only says which kind of failure its client's
 * error is, and the few hints that differ.
 */
export interface EngineFailureContext {
  /** 'Elasticsearch' or 'OpenSearch', as the messages name it. */
  product: string;
  endpoint: string;
  /** Where the credentials come from (never their value). */
  credentials: string;
  /** Where the URL was configured (`where('elasticsearch.url', sourceOf)`). */
  at: string;
  cause: unknown;
  hints: { auth: string; forbidden: string; unavailable: string; tls: string };
}

function make(ctx: EngineFailureContext, code: DependencyErrorCode, detail: string, hint: string): DependencyError {
  return new DependencyError(code, 'elasticsearch', ctx.endpoint, detail, hint, { cause: ctx.cause });
}

/** The text of an engine's error body: `type: reason`, a plain string, or the first line of a non-JSON answer. */
export function errorBodyReason(body: unknown): string | undefined {
  if (typeof body === 'string') return body ? firstLine(body).slice(0, 200) : undefined;
  if (typeof body !== 'object' || body === null) return undefined;
  const e = (body as { error?: unknown }).error;
  if (typeof e === 'string') return e;
  if (typeof e === 'object' && e !== null) {
    const { type, reason } = e as { type?: string; reason?: string | null };
    return `${type ?? 'error'}: ${reason ?? ''}`.trim();
  }
  return undefined;
}

/** The engine answered with an error status. */
export function responseFailure(ctx: EngineFailureContext, status: number, body: unknown): DependencyError {
  const detail = `${String(status)} ${errorBodyReason(body) ?? 'no reason given'}`;
  if (status === 401) return make(ctx, 'ES_AUTH', `${detail} (${ctx.credentials})`, ctx.hints.auth);
  if (status === 403) return make(ctx, 'ES_FORBIDDEN', `${detail} (${ctx.credentials})`, ctx.hints.forbidden);
  if (status === 502 || status === 503 || status === 504)
    return make(ctx, 'ES_UNAVAILABLE', detail, ctx.hints.unavailable);
  if (status === 404 || status === 405)
    return make(ctx, 'ES_PROTOCOL', `${detail}: this does not look like ${ctx.product}`, `check the URL (${ctx.at})`);
  return make(ctx, 'ES_ERROR', detail, `check ${ctx.product}'s logs`);
}

/** Something answered, but not the engine's protocol. */
export function notTheEngineFailure(ctx: EngineFailureContext): DependencyError {
  return make(ctx, 'ES_PROTOCOL', `answered, but it is not ${ctx.product}`, `check the host and port (${ctx.at})`);
}

export function timeoutFailure(
  ctx: EngineFailureContext,
  timeoutMs: number | undefined,
  tried: string,
): DependencyError {
  return make(
    ctx,
    'ES_TIMEOUT',
    `no answer within ${timeoutMs === undefined ? '?' : String(timeoutMs)} ms (tried: ${tried})`,
    `check that ${ctx.product} runs there and is not overloaded (${ctx.at})`,
  );
}

/** The connection failed: refused, unknown host, TLS, or closed without an answer. */
export function connectionFailure(ctx: EngineFailureContext, message: string): DependencyError {
  const runs = `check that ${ctx.product} runs there (${ctx.at})`;
  if (message.includes('ECONNREFUSED')) return make(ctx, 'ES_UNREACHABLE', 'connection refused (ECONNREFUSED)', runs);
  if (/ENOTFOUND|EAI_AGAIN/.test(message))
    return make(ctx, 'ES_UNREACHABLE', 'host not found (ENOTFOUND)', `check the host name (${ctx.at})`);
  if (/certificate|SSL|TLS|wrong version number/i.test(message))
    return make(ctx, 'ES_TLS', `TLS failed: ${firstLine(message)}`, ctx.hints.tls);
  if (/socket hang up|ECONNRESET|other side closed/i.test(message))
    return make(
      ctx,
      'ES_PROTOCOL',
      `the connection was closed without an HTTP answer (${firstLine(message)})`,
      `check that this is ${ctx.product}'s HTTP port (${ctx.at})`,
    );
  return make(ctx, 'ES_UNREACHABLE', firstLine(message), runs);
}

/** Anything else. */
export function otherFailure(ctx: EngineFailureContext, detail: string): DependencyError {
  return make(ctx, 'ES_ERROR', detail, `check ${ctx.product}`);
}
