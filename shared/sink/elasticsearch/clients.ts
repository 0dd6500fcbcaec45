import { Client as Client8 } from '@elastic/elasticsearch';
import { Client as Client9 } from 'elasticsearch9';
import type { AppConfig } from '../../platform/config/schema';
import type { Logger } from '../../platform/logger';
import { readPem } from '../../platform/tls';

/**
 * What the adapter uses of a client: its transport (the same `request` on 8.x and 9.x, so one
 * adapter serves both majors; each client adds its own compatibility headers and product check).
 */
export interface EsTransportClient {
  transport: {
    // The clients' own generic signatures (the caller names the answer's shape), so both assign to them.
    /* eslint-disable @typescript-eslint/no-unnecessary-type-parameters -- see above */
    request<T>(params: EsRequest, options?: EsRequestOptions): Promise<T>;
    request<T>(
      params: EsRequest,
      options: EsRequestOptions & { meta: true },
    ): Promise<{ statusCode: number | null; body: T }>;
    /* eslint-enable @typescript-eslint/no-unnecessary-type-parameters */
  };
  close(): Promise<void>;
}

export interface EsRequest {
  method: string;
  path: string;
  body?: Record<string, unknown>;
  bulkBody?: string[] | Buffer;
  querystring?: Record<string, string | number | boolean>;
}

export interface EsRequestOptions {
  signal?: AbortSignal;
  requestTimeout?: number;
  maxRetries?: number;
  ignore?: number[];
}

/** The client of the server's major: @elastic/elasticsearch 8 for 8.x, 9 (`elasticsearch9`) for 9.x. */
export function createEsClient(major: 8 | 9, config: AppConfig['elasticsearch'], logger: Logger): EsTransportClient {
  const log = logger.child({ component: 'elasticsearch' });
  // Both majors take the same options (node, auth, tls, caFingerprint, requestTimeout, maxRetries).
  const options = esClientOptions(config);
  if (major === 9) {
    const client = new Client9(options);
    client.diagnostic.on('response', (err, result) => {
      logFailure(log, err, result?.meta.request.params, result?.statusCode);
    });
    return client;
  }
  const client = new Client8(options);
  client.diagnostic.on('response', (err, result) => {
    logFailure(log, err, result?.meta.request.params, result?.statusCode);
  });
  return client;
}

/**
 * Failed requests, at debug: the callers decide what is worth a warning. Only method, path,
 * status and the error's type: the event's metadata holds the request's headers, and with
 * them the credentials.
 */
function logFailure(
  log: Logger,
  err: Error | null,
  request: { method: string; path: string } | undefined,
  status: number | null | undefined,
): void {
  if (!err || !log.isLevelEnabled('debug')) return;
  log.debug(
    { method: request?.method, path: request?.path, status: status ?? undefined, err },
    'elasticsearch request failed',
  );
}

/** The options this tool sets, which both majors' clients take alike. */
export interface EsClientOptions {
  node: string;
  requestTimeout: number;
  maxRetries: number;
  auth?: { apiKey: string } | { username: string; password: string };
  tls?: { rejectUnauthorized: boolean; ca?: string };
  caFingerprint?: string;
}

/** The client's options: node, timeouts, auth, and TLS (a CA file and/or the CA's fingerprint). */
export function esClientOptions(config: AppConfig['elasticsearch']): EsClientOptions {
  const options: EsClientOptions = {
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
