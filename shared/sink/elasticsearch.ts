import { Client, errors, type ClientOptions } from '@elastic/elasticsearch';
import type { AppConfig } from '../platform/config/schema';
import { defaultLogger, type Logger } from '../platform/logger';
import { readPem } from '../platform/tls';

export { Client as EsClient };

export function createEsClient(config: AppConfig['elasticsearch'], logger: Logger = defaultLogger()): Client {
  const client = new Client(esClientOptions(config));
  logEsErrors(client, logger.child({ component: 'elasticsearch' }));
  return client;
}

/**
 * Failed requests, at debug: the callers decide what is worth a warning. Only method, path,
 * status and the error's type: the event's metadata holds the request's headers, and with
 * them the credentials.
 */
function logEsErrors(client: Client, log: Logger): void {
  client.diagnostic.on('response', (err, result) => {
    if (!err || !log.isLevelEnabled('debug')) return;
    const request = result?.meta.request.params;
    log.debug(
      { method: request?.method, path: request?.path, status: result?.statusCode ?? undefined, err },
      'elasticsearch request failed',
    );
  });
}

/** The client's options: node, timeouts, auth, and TLS (a CA file and/or the CA's fingerprint). */
export function esClientOptions(config: AppConfig['elasticsearch']): ClientOptions {
  const options: ClientOptions = {
    node: config.url,
    requestTimeout: config.requestTimeoutMs,
    // Retries are ours: they re-read Redis before resending, which the client's cannot.
    maxRetries: 0,
  };
  if (config.apiKey) options.auth = { apiKey: config.apiKey };
  else if (config.username && config.password) options.auth = { username: config.username, password: config.password };
  const tls = config.tls;
  if (tls) {
    options.tls = {
      rejectUnauthorized: tls.rejectUnauthorized,
      ...(tls.ca ? { ca: readPem(tls.ca, 'elasticsearch.tls.ca') } : {}),
    };
    if (tls.caFingerprint) options.caFingerprint = tls.caFingerprint;
  }
  return options;
}

/** Errors worth retrying: Elasticsearch unreachable, overloaded (429) or failing (5xx). */
export function isTransientEsError(err: unknown): boolean {
  if (err instanceof errors.ResponseError) {
    const status = err.statusCode ?? 0;
    return status === 429 || status >= 500;
  }
  return (
    err instanceof errors.ConnectionError ||
    err instanceof errors.TimeoutError ||
    err instanceof errors.NoLivingConnectionsError ||
    err instanceof errors.DeserializationError
  );
}

export function describeEsError(err: unknown): string {
  if (err instanceof errors.ResponseError) {
    const body = err.body as { error?: { type?: string; reason?: string } } | undefined;
    const e = body?.error;
    return e?.type ? `${err.statusCode} ${e.type}: ${e.reason ?? ''}` : `${err.statusCode ?? ''} ${err.message}`;
  }
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
}
