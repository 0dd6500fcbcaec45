import { errors as errors8 } from '@elastic/elasticsearch';
import { errors as errors9 } from 'elasticsearch9';
import { DependencyError, errorMessage } from '../../platform/errors';
import { where, type SourceOf } from '../../platform/dependencies';
import {
  connectionFailure,
  notTheEngineFailure,
  otherFailure,
  responseFailure,
  timeoutFailure,
  type EngineFailureContext,
} from '../engine-failure';

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
  const ctx: EngineFailureContext = {
    product: 'Elasticsearch',
    endpoint,
    credentials,
    at: where('elasticsearch.url', sourceOf),
    cause: err,
    hints: {
      auth: 'check the API key or user and password',
      forbidden:
        'grant the credentials the privileges docs/security.md "Elasticsearch privileges" lists (cluster: monitor; indices: create_index, view_index_metadata, write, read)',
      unavailable: 'Elasticsearch is up but not ready (starting, no master, overloaded); check its health and logs',
      tls: 'check http:// vs https:// and elasticsearch.tls (CA, fingerprint)',
    },
  };
  if (isResponseError(err)) return responseFailure(ctx, err.statusCode ?? 0, err.body);
  if (isNotElasticsearch(err)) return notTheEngineFailure(ctx);
  if (isTimeout(err)) return timeoutFailure(ctx, timeoutMs, tried);
  if (isConnectionError(err)) return connectionFailure(ctx, err.message);
  return otherFailure(ctx, errorMessage(err));
}
