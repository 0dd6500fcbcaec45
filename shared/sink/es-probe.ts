import { errors } from '@elastic/elasticsearch';
import type { Client } from '@elastic/elasticsearch';
import { DependencyError, errorMessage, type DependencyErrorCode } from '../platform/errors';
import { firstLine, where, type DependencyProbe, type SourceOf } from '../platform/dependencies';

/**
 * `_cluster/health` rather than `GET /` (client.info / ping): some distributions, like the
 * integ-test build, answer 405 there. Any answer means the cluster is reachable; a red
 * cluster still answers 200 and only the writes to its red indices fail, which the worker
 * retries, so status colour is not readiness. One try, bounded: a probe must answer quickly.
 */
export function clusterHealth(es: Client, timeoutMs: number): Promise<unknown> {
  return es.cluster.health({}, { requestTimeout: timeoutMs, maxRetries: 0 });
}

/**
 * Elasticsearch answers `_cluster/health` (the call `/readyz` makes) within `timeoutMs`. A 401
 * names the credentials' origin, never their value.
 */
export function elasticsearchProbe(
  es: Client,
  endpoint: string,
  credentials: string,
  sourceOf: SourceOf,
): DependencyProbe {
  return {
    name: 'elasticsearch',
    endpoint,
    async check(timeoutMs) {
      try {
        await clusterHealth(es, timeoutMs);
      } catch (err) {
        throw esError(endpoint, err, credentials, sourceOf, timeoutMs);
      }
    },
  };
}

/** `ELASTICSEARCH_API_KEY_FILE`, `ELASTICSEARCH_USERNAME`, or that none are configured. */
export function credentialsOrigin(config: { apiKey?: string; username?: string }, sourceOf: SourceOf): string {
  const strip = (s: string | undefined): string | undefined => s?.replace(/^(env|flag|file) /, '');
  if (config.apiKey) return `credentials from ${strip(sourceOf('elasticsearch.apiKey')) ?? 'elasticsearch.apiKey'}`;
  if (config.username)
    return `credentials of user ${config.username} from ${strip(sourceOf('elasticsearch.username')) ?? 'elasticsearch.username'}`;
  return 'no credentials configured: set ELASTICSEARCH_API_KEY or ELASTICSEARCH_USERNAME and ELASTICSEARCH_PASSWORD';
}

export function esError(
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
  if (err instanceof errors.ProductNotSupportedError || err instanceof errors.DeserializationError) {
    return make('ES_PROTOCOL', 'answered, but it is not Elasticsearch', `check the host and port (${at})`);
  }
  if (err instanceof errors.TimeoutError) {
    return make(
      'ES_TIMEOUT',
      `no answer within ${timeoutMs ?? '?'} ms (tried: ${tried})`,
      `check that Elasticsearch runs there and is not overloaded (${at})`,
    );
  }
  if (err instanceof errors.ConnectionError || err instanceof errors.NoLivingConnectionsError) {
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
