import { errors as errors8 } from '@elastic/elasticsearch';
import { errors as errors9 } from 'elasticsearch9';
import { DependencyError, errorMessage, type DependencyErrorCode } from '../../platform/errors';
import { firstLine, where, type SourceOf } from '../../platform/dependencies';

/*
 * The error classes of both majors' clients: an error is one of either package's classes,
 * depending on the client that raised it.
 */
type ResponseErrorLike = InstanceType<typeof errors8.ResponseError> | InstanceType<typeof errors9.ResponseError>;

export function isResponseError(err: unknown): err is ResponseErrorLike {
  return err instanceof errors8.ResponseError || err instanceof errors9.ResponseError;
}

/** Any error either client raises (a failed request, a refused product, a timeout, ...). */
export function isClientError(err: unknown): err is Error {
  return err instanceof errors8.ElasticsearchClientError || err instanceof errors9.ElasticsearchClientError;
}

function isTimeout(err: unknown): err is Error {
  return err instanceof errors8.TimeoutError || err instanceof errors9.TimeoutError;
}

function isConnectionError(err: unknown): err is Error {
  return (
    err instanceof errors8.ConnectionError ||
    err instanceof errors9.ConnectionError ||
    err instanceof errors8.NoLivingConnectionsError ||
    err instanceof errors9.NoLivingConnectionsError
  );
}

function isNotElasticsearch(err: unknown): boolean {
  return (
    err instanceof errors8.ProductNotSupportedError ||
    err instanceof errors9.ProductNotSupportedError ||
    err instanceof errors8.DeserializationError ||
    err instanceof errors9.DeserializationError
  );
}

/** The `error.type` of an answer (`resource_already_exists_exception`, ...), when it has one. */
export function errorType(err: unknown): string | undefined {
  if (!isResponseError(err)) return undefined;
  const body = err.body as { error?: { type?: string } | string } | null | undefined;
  return typeof body?.error === 'object' ? body.error.type : undefined;
}

/** Errors worth retrying: Elasticsearch unreachable, overloaded (429) or failing (5xx). */
export function isTransientEsError(err: unknown): boolean {
  if (err instanceof DependencyError) return !err.permanent;
  if (isResponseError(err)) {
    const status = err.statusCode ?? 0;
    return status === 429 || status >= 500;
  }
  return (
    isConnectionError(err) ||
    isTimeout(err) ||
    err instanceof errors8.DeserializationError ||
    err instanceof errors9.DeserializationError
  );
}

export function describeEsError(err: unknown): string {
  if (isResponseError(err)) {
    const body = err.body as { error?: { type?: string; reason?: string } } | undefined;
    const e = body?.error;
    return e?.type ? `${err.statusCode} ${e.type}: ${e.reason ?? ''}` : `${err.statusCode ?? ''} ${err.message}`;
  }
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
}

/** The reason an engine gave for refusing a request (its root cause first). */
export function refusalReason(err: ResponseErrorLike): string {
  const body = err.body as { error?: { root_cause?: { reason?: string }[]; reason?: string } } | undefined;
  return body?.error?.root_cause?.[0]?.reason ?? body?.error?.reason ?? err.message;
}

/**
 * A failure of any call as the operator-facing error: which endpoint, what happened, what to check.
 * A 401 names the credentials' origin, never their value.
 */
export function esError(
  endpoint: string,
  err: unknown,
  credentials: string,
  sourceOf: SourceOf,
  timeoutMs?: number,
  tried = 'GET /_cluster/health',
): DependencyError {
  if (err instanceof DependencyError) return err;
  const at = where('elasticsearch.url', sourceOf);
  const make = (c: DependencyErrorCode, detail: string, hint: string): DependencyError =>
    new DependencyError(c, 'elasticsearch', endpoint, detail, hint, { cause: err });
  if (isResponseError(err)) {
    const status = err.statusCode ?? 0;
    const body = err.body as
      | { error?: { type?: string; reason?: string | null } | string | null; status?: number }
      | string
      | null
      | undefined;
    const e = typeof body === 'object' && body !== null ? body.error : undefined;
    const what =
      typeof e === 'object' && e !== null
        ? `${e.type ?? 'error'}: ${e.reason ?? ''}`.trim()
        : typeof e === 'string'
          ? e
          : typeof body === 'string' && body
            ? firstLine(body).slice(0, 200)
            : 'no reason given';
    const detail = `${status} ${what}`;
    if (status === 401) return make('ES_AUTH', `${detail} (${credentials})`, 'check the API key or user and password');
    if (status === 403)
      return make(
        'ES_FORBIDDEN',
        `${detail} (${credentials})`,
        'grant the credentials the privileges docs/security.md "Elasticsearch privileges" lists (cluster: monitor; indices: create_index, view_index_metadata, write, read)',
      );
    if (status === 503 || status === 502 || status === 504)
      return make(
        'ES_UNAVAILABLE',
        detail,
        'Elasticsearch is up but not ready (starting, no master, overloaded); check its health and logs',
      );
    if (status === 404 || status === 405)
      return make('ES_PROTOCOL', `${detail}: this does not look like Elasticsearch`, `check the URL (${at})`);
    return make('ES_ERROR', detail, "check Elasticsearch's logs");
  }
  if (isNotElasticsearch(err)) {
    return make('ES_PROTOCOL', 'answered, but it is not Elasticsearch', `check the host and port (${at})`);
  }
  if (isTimeout(err)) {
    return make(
      'ES_TIMEOUT',
      `no answer within ${timeoutMs ?? '?'} ms (tried: ${tried})`,
      `check that Elasticsearch runs there and is not overloaded (${at})`,
    );
  }
  if (isConnectionError(err)) {
    const msg = err.message;
    if (msg.includes('ECONNREFUSED'))
      return make('ES_UNREACHABLE', 'connection refused (ECONNREFUSED)', `check that Elasticsearch runs there (${at})`);
    if (/ENOTFOUND|EAI_AGAIN/.test(msg))
      return make('ES_UNREACHABLE', 'host not found (ENOTFOUND)', `check the host name (${at})`);
    if (/certificate|SSL|TLS|wrong version number/i.test(msg))
      return make(
        'ES_TLS',
        `TLS failed: ${firstLine(msg)}`,
        'check http:// vs https:// and elasticsearch.tls (CA, fingerprint)',
      );
    if (/socket hang up|ECONNRESET|other side closed/i.test(msg))
      return make(
        'ES_PROTOCOL',
        `the connection was closed without an HTTP answer (${firstLine(msg)})`,
        `check that this is Elasticsearch's HTTP port (${at})`,
      );
    return make('ES_UNREACHABLE', firstLine(msg), `check that Elasticsearch runs there (${at})`);
  }
  return make('ES_ERROR', errorMessage(err), 'check Elasticsearch');
}
