import { errors } from '@opensearch-project/opensearch';
import type { AppConfig, SinkAwsConfig } from '../../platform/config/schema';
import { firstLine, where, type SourceOf } from '../../platform/dependencies';
import { DependencyError, errorMessage } from '../../platform/errors';
import {
  connectionFailure,
  notTheEngineFailure,
  errorBodyReason,
  otherFailure,
  responseFailure,
  timeoutFailure,
  type EngineFailureContext,
} from '../engine-failure';

/** Any error of the OpenSearch client (not one of ours or of Node's). */
export function isOpenSearchClientError(err: unknown): boolean {
  return err instanceof errors.OpenSearchClientError;
}

/** OpenSearch refused the credentials. */
export function isOpenSearchAuthError(err: unknown): boolean {
  return err instanceof errors.ResponseError && err.statusCode === 401;
}

/** Errors worth retrying: OpenSearch unreachable, timed out, overloaded (429) or failing (5xx). */
export function isTransientOpenSearchError(err: unknown): boolean {
  if (err instanceof errors.ResponseError) {
    const status = err.statusCode;
    return status === 429 || status >= 500;
  }
  return (
    err instanceof errors.ConnectionError ||
    err instanceof errors.TimeoutError ||
    err instanceof errors.NoLivingConnectionsError ||
    err instanceof errors.DeserializationError
  );
}

interface ErrorBody {
  error?: { type?: string; reason?: string | null } | string | null;
}

/** The `error` of an answer: `type: reason`, or the body's first line when it is not JSON. */

export function errorType(err: unknown): string | undefined {
  if (!(err instanceof errors.ResponseError)) return undefined;
  const e = (err.body as ErrorBody | null | undefined)?.error;
  return typeof e === 'object' && e !== null ? e.type : undefined;
}

export function describeOpenSearchError(err: unknown): string {
  if (err instanceof errors.ResponseError) {
    const reason = errorBodyReason(err.body);
    return reason ? `${err.statusCode} ${reason}` : `${err.statusCode} ${err.message}`;
  }
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
}

/** Names where the credentials come from, never their value. */
export function openSearchCredentials(
  connection: AppConfig['elasticsearch'],
  aws: SinkAwsConfig | undefined,
  sourceOf: SourceOf,
): string {
  const strip = (s: string | undefined): string | undefined => s?.replace(/^(env|flag|file) /, '');
  if (aws?.region)
    return `AWS SigV4 for ${aws.service} in ${aws.region}, credentials from the AWS default provider chain`;
  if (connection.apiKey) return `API key from ${strip(sourceOf('elasticsearch.apiKey')) ?? 'elasticsearch.apiKey'}`;
  if (connection.username)
    return `credentials of user ${connection.username} from ${strip(sourceOf('elasticsearch.username')) ?? 'elasticsearch.username'}`;
  return 'no credentials configured: set ELASTICSEARCH_USERNAME and ELASTICSEARCH_PASSWORD, or sink.aws for Amazon OpenSearch Service';
}

/**
 * What a failed call means for an operator, with the codes and wording of the Elasticsearch
 * adapter (shared/sink/es-probe.ts): the dependency is "the search engine" to the rest of the tool.
 */
export function openSearchDependencyError(
  endpoint: string,
  err: unknown,
  credentials: string,
  sourceOf: SourceOf,
  timeoutMs?: number,
  tried = 'GET /_cluster/health',
): DependencyError {
  const ctx: EngineFailureContext = {
    product: 'OpenSearch',
    endpoint,
    credentials,
    at: where('elasticsearch.url', sourceOf),
    cause: err,
    hints: {
      auth: 'check the user and password, the API key or the AWS credentials',
      forbidden:
        'grant the credentials the permissions docs/security.md lists (cluster health; create, read and write the indices)',
      unavailable:
        'OpenSearch is up but not ready (starting, no cluster manager, overloaded); check its health and logs',
      tls: 'check http:// vs https:// and elasticsearch.tls (CA)',
    },
  };
  if (err instanceof errors.ResponseError) return responseFailure(ctx, err.statusCode, err.body);
  if (err instanceof errors.DeserializationError) return notTheEngineFailure(ctx);
  if (err instanceof errors.TimeoutError) return timeoutFailure(ctx, timeoutMs, tried);
  if (err instanceof errors.ConnectionError || err instanceof errors.NoLivingConnectionsError)
    return connectionFailure(ctx, err.message);
  // The AWS credential chain found nothing, or a token expired: the signer cannot sign.
  if (err instanceof Error && /credential/i.test(err.name + err.message))
    return new DependencyError(
      'ES_AUTH',
      'elasticsearch',
      endpoint,
      `AWS credentials: ${firstLine(err.message)} (${credentials})`,
      'check the AWS credentials the process gets (docs/security.md)',
      { cause: err },
    );
  return otherFailure(ctx, errorMessage(err));
}
