import { errors } from '@opensearch-project/opensearch';
import type { AppConfig, SinkAwsConfig } from '../../platform/config/schema';
import { firstLine, where, type SourceOf } from '../../platform/dependencies';
import { DependencyError, errorMessage, type DependencyErrorCode } from '../../platform/errors';

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
function responseReason(body: unknown): string | undefined {
  if (typeof body === 'string') return body ? firstLine(body).slice(0, 200) : undefined;
  if (typeof body !== 'object' || body === null) return undefined;
  const e = (body as ErrorBody).error;
  if (typeof e === 'string') return e;
  if (typeof e === 'object' && e !== null) return `${e.type ?? 'error'}: ${e.reason ?? ''}`.trim();
  return undefined;
}

export function errorType(err: unknown): string | undefined {
  if (!(err instanceof errors.ResponseError)) return undefined;
  const e = (err.body as ErrorBody | null | undefined)?.error;
  return typeof e === 'object' && e !== null ? e.type : undefined;
}

export function describeOpenSearchError(err: unknown): string {
  if (err instanceof errors.ResponseError) {
    const reason = responseReason(err.body);
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
  const at = where('elasticsearch.url', sourceOf);
  const make = (c: DependencyErrorCode, detail: string, hint: string): DependencyError =>
    new DependencyError(c, 'elasticsearch', endpoint, detail, hint, { cause: err });
  if (err instanceof errors.ResponseError) {
    const status = err.statusCode;
    const detail = `${status} ${responseReason(err.body) ?? 'no reason given'}`;
    if (status === 401)
      return make(
        'ES_AUTH',
        `${detail} (${credentials})`,
        'check the user and password, the API key or the AWS credentials',
      );
    if (status === 403)
      return make(
        'ES_FORBIDDEN',
        `${detail} (${credentials})`,
        'grant the credentials the permissions docs/security.md lists (cluster health; create, read and write the indices)',
      );
    if (status === 502 || status === 503 || status === 504)
      return make(
        'ES_UNAVAILABLE',
        detail,
        'OpenSearch is up but not ready (starting, no cluster manager, overloaded); check its health and logs',
      );
    if (status === 404 || status === 405)
      return make('ES_PROTOCOL', `${detail}: this does not look like OpenSearch`, `check the URL (${at})`);
    return make('ES_ERROR', detail, "check OpenSearch's logs");
  }
  if (err instanceof errors.DeserializationError)
    return make('ES_PROTOCOL', 'answered, but it is not OpenSearch', `check the host and port (${at})`);
  if (err instanceof errors.TimeoutError)
    return make(
      'ES_TIMEOUT',
      `no answer within ${timeoutMs ?? '?'} ms (tried: ${tried})`,
      `check that OpenSearch runs there and is not overloaded (${at})`,
    );
  if (err instanceof errors.ConnectionError || err instanceof errors.NoLivingConnectionsError) {
    const msg = err.message;
    if (msg.includes('ECONNREFUSED'))
      return make('ES_UNREACHABLE', 'connection refused (ECONNREFUSED)', `check that OpenSearch runs there (${at})`);
    if (/ENOTFOUND|EAI_AGAIN/.test(msg))
      return make('ES_UNREACHABLE', 'host not found (ENOTFOUND)', `check the host name (${at})`);
    if (/certificate|SSL|TLS|wrong version number/i.test(msg))
      return make('ES_TLS', `TLS failed: ${firstLine(msg)}`, 'check http:// vs https:// and elasticsearch.tls (CA)');
    if (/socket hang up|ECONNRESET|other side closed/i.test(msg))
      return make(
        'ES_PROTOCOL',
        `the connection was closed without an HTTP answer (${firstLine(msg)})`,
        `check that this is OpenSearch's HTTP port (${at})`,
      );
    return make('ES_UNREACHABLE', firstLine(msg), `check that OpenSearch runs there (${at})`);
  }
  // The AWS credential chain found nothing, or a token expired: the signer cannot sign.
  if (err instanceof Error && /credential/i.test(err.name + err.message))
    return make(
      'ES_AUTH',
      `AWS credentials: ${firstLine(err.message)} (${credentials})`,
      'check the AWS credentials the process gets (docs/security.md)',
    );
  return make('ES_ERROR', errorMessage(err), 'check OpenSearch');
}
