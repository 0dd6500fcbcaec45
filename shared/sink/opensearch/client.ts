import { defaultProvider } from '@aws-sdk/credential-provider-node';
import { Client, type ClientOptions } from '@opensearch-project/opensearch';
import { AwsSigv4Signer } from '@opensearch-project/opensearch/aws';
import type { AppConfig, SinkAwsConfig } from '../../platform/config/schema';
import { ConfigError } from '../../platform/errors';
import type { Logger } from '../../platform/logger';
import { readPem } from '../../platform/tls';

export { Client as OpenSearchClient };

/**
 * The client's options: node, timeouts, auth and TLS. An API key goes out as
 * `Authorization: ApiKey <key>`, the header OpenSearch's security plugin reads its API keys from
 * (3.7 and later); older servers answer 401, which the probe reports as ES_AUTH.
 * With AWS signing the request's Authorization header is the signature, so no other credential
 * can ride along: giving one is a configuration error naming it, not a silent choice.
 */
export function openSearchClientOptions(
  connection: AppConfig['elasticsearch'],
  aws: SinkAwsConfig | undefined,
): ClientOptions {
  const options: ClientOptions = {
    node: connection.url,
    requestTimeout: connection.requestTimeoutMs,
    // Retries are ours: they re-read Redis before resending, which the client's cannot.
    maxRetries: 0,
  };
  const signing = aws?.region !== undefined;
  if (signing) {
    const clash = connection.apiKey
      ? 'elasticsearch.apiKey'
      : connection.username
        ? 'elasticsearch.username'
        : undefined;
    if (clash)
      throw configError(clash, 'cannot be combined with sink.aws.region: AWS SigV4 signs every request instead');
  }
  if (connection.apiKey) options.headers = { authorization: `ApiKey ${connection.apiKey}` };
  else if (connection.username && connection.password)
    options.auth = { username: connection.username, password: connection.password };
  const tls = connection.tls;
  if (tls) {
    // The OpenSearch client has no fingerprint pinning; a CA file does the same job.
    if (tls.caFingerprint)
      throw configError(
        'elasticsearch.tls.caFingerprint',
        'is not supported for OpenSearch: give elasticsearch.tls.ca',
      );
    options.ssl = {
      rejectUnauthorized: tls.rejectUnauthorized,
      ...(tls.ca ? { ca: readPem(tls.ca, 'elasticsearch.tls.ca') } : {}),
    };
  }
  if (aws?.region !== undefined) {
    Object.assign(
      options,
      AwsSigv4Signer({
        region: aws.region,
        service: aws.service,
        // The default chain: env, shared config and SSO, web identity (EKS), ECS and EC2 roles.
        getCredentials: defaultProvider(),
      }),
    );
  }
  return options;
}

function configError(field: string, reason: string): ConfigError {
  return new ConfigError(`invalid configuration:\n  - ${field}: ${reason}`, [{ field, reason }]);
}

export function createOpenSearchClient(
  connection: AppConfig['elasticsearch'],
  aws: SinkAwsConfig | undefined,
  logger: Logger,
): Client {
  const client = new Client(openSearchClientOptions(connection, aws));
  logOpenSearchErrors(client, logger.child({ component: 'opensearch' }));
  return client;
}

/**
 * Failed requests, at debug: the callers decide what is worth a warning. Only method, path,
 * status and the error (through the logger's allow-list serializer): the event's metadata
 * holds the request's headers, and with them the credentials or the signature.
 */
function logOpenSearchErrors(client: Client, log: Logger): void {
  // Typed loosely on purpose: the client's types say `err` is always an error, but a request that
  // succeeded emits null.
  client.on('response', (err: unknown, result: unknown) => {
    if (err === null || err === undefined || !log.isLevelEnabled('debug')) return;
    const meta = result as
      | { statusCode?: number | null; meta?: { request?: { params?: { method?: string; path?: string } } } }
      | null
      | undefined;
    const request = meta?.meta?.request?.params;
    log.debug(
      { method: request?.method, path: request?.path, status: meta?.statusCode ?? undefined, err },
      'opensearch request failed',
    );
  });
}
