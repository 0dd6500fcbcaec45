import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { TLSSocket } from 'node:tls';
import type { AppConfig } from '../platform/config/schema';
import { where, type SourceOf } from '../platform/dependencies';
import { DependencyError } from '../platform/errors';
import { redactUrl, type Logger } from '../platform/logger';
import { readPem } from '../platform/tls';
import { credentialsOrigin } from './credentials';
import { connectionFailure, errorBodyReason, timeoutFailure, type EngineFailureContext } from './engine-failure';
import type { EngineInfo } from './port';

/**
 * The one request that names the product and version on Elasticsearch and OpenSearch alike,
 * with only the `monitor` cluster privilege: the local node's info, cut to two fields.
 * (`GET /` would be simpler, but Elasticsearch's integ-test build answers it 405.)
 */
const AUTH_HINT = 'check the API key or user and password';
const FORBIDDEN_HINT =
  'grant the credentials the privileges docs/security.md "Elasticsearch privileges" lists (cluster: monitor; indices: create_index, view_index_metadata, write, read)';
const UNAVAILABLE_HINT = 'the search engine is up but not ready; check its health and logs';
const TLS_HINT = 'check http:// vs https:// and elasticsearch.tls (CA, fingerprint)';

export const DETECT_PATH = '/_nodes/_local?filter_path=nodes.*.version,nodes.*.build_flavor';

/**
 * The engine at `connection.url`, from one bounded raw HTTP request: not through an engine's
 * client, because Elasticsearch's refuses to talk to any other product.
 *
 * Elasticsearch (7.14 on) sends `X-elastic-product: Elasticsearch` on every answer; OpenSearch
 * neither sends it nor has a `build_flavor`, which every Elasticsearch since 6.3 reports.
 */
export async function detectEngine(
  connection: AppConfig['elasticsearch'],
  timeoutMs: number,
  sourceOf: SourceOf,
  logger?: Logger,
): Promise<EngineInfo> {
  const endpoint = redactUrl(connection.url);
  const tried = `GET ${DETECT_PATH.split('?')[0] ?? DETECT_PATH}`;
  const fail = (
    code: 'ES_AUTH' | 'ES_FORBIDDEN' | 'ES_PROTOCOL' | 'ES_UNAVAILABLE',
    detail: string,
    hint: string,
  ): DependencyError => new DependencyError(code, 'elasticsearch', endpoint, detail, hint);
  const at = where('elasticsearch.url', sourceOf);
  const credentials = credentialsOrigin(connection, sourceOf);
  let answer: { status: number; product: string | undefined; body: string };
  try {
    answer = await get(connection, DETECT_PATH, timeoutMs);
  } catch (err) {
    const ctx: EngineFailureContext = {
      product: 'the search engine',
      endpoint,
      credentials,
      at,
      cause: err,
      hints: { auth: AUTH_HINT, forbidden: FORBIDDEN_HINT, unavailable: UNAVAILABLE_HINT, tls: TLS_HINT },
    };
    if (err instanceof DetectTimeout) throw timeoutFailure(ctx, timeoutMs, tried);
    throw connectionFailure(ctx, err instanceof Error ? err.message : String(err));
  }
  // Like the engines' clients' failed requests: at debug, method, path and status, never headers.
  if (answer.status !== 200)
    logger?.debug({ method: 'GET', path: DETECT_PATH, status: answer.status }, 'search engine request failed');
  const detail = `${answer.status} ${errorBodyReason(jsonOrText(answer.body)) ?? 'no reason given'} (tried: ${tried})`;
  if (answer.status === 401) throw fail('ES_AUTH', `${detail} (${credentials})`, AUTH_HINT);
  if (answer.status === 403) throw fail('ES_FORBIDDEN', `${detail} (${credentials})`, FORBIDDEN_HINT);
  // Any 5xx, not only the gateway codes the engines' clients retry: a node still starting answers 500 here.
  if (answer.status >= 500) throw fail('ES_UNAVAILABLE', detail, UNAVAILABLE_HINT);
  if (answer.status !== 200)
    throw fail(
      'ES_PROTOCOL',
      `${detail}: this does not look like Elasticsearch or OpenSearch`,
      `check the URL (${at})`,
    );
  const node = firstNode(answer.body);
  if (!node?.version)
    throw fail(
      'ES_PROTOCOL',
      `${tried} answered without a node version: this does not look like Elasticsearch or OpenSearch`,
      `check the URL (${at})`,
    );
  const product =
    answer.product === 'Elasticsearch' || node.build_flavor !== undefined ? 'elasticsearch' : 'opensearch';
  return { product, version: node.version };
}

/** An answer's body as the engines' error parser takes it: parsed JSON, or the text itself. */
function jsonOrText(body: string): unknown {
  try {
    return JSON.parse(body) as unknown;
  } catch {
    return body;
  }
}

class DetectTimeout extends Error {
  override readonly name = 'DetectTimeout';
}

function firstNode(body: string): { version?: string; build_flavor?: string } | undefined {
  try {
    const parsed = JSON.parse(body) as { nodes?: Record<string, { version?: unknown; build_flavor?: unknown }> };
    const node = Object.values(parsed.nodes ?? {})[0];
    if (!node) return undefined;
    return {
      ...(typeof node.version === 'string' ? { version: node.version } : {}),
      ...(typeof node.build_flavor === 'string' ? { build_flavor: node.build_flavor } : {}),
    };
  } catch {
    return undefined;
  }
}

/** Answers above this are not a node-info reply cut by filter_path: read no further. */
const MAX_BODY_BYTES = 64 * 1024;

function get(
  connection: AppConfig['elasticsearch'],
  path: string,
  timeoutMs: number,
): Promise<{ status: number; product: string | undefined; body: string }> {
  const url = new URL(path, connection.url.endsWith('/') ? connection.url : `${connection.url}/`);
  const basic = (user: string, password: string): string =>
    `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
  // The configured credentials win over any in the URL, as with the engines' clients.
  let authorization: string | undefined;
  if (connection.apiKey) authorization = `ApiKey ${connection.apiKey}`;
  else if (connection.username && connection.password) authorization = basic(connection.username, connection.password);
  else if (url.username || url.password)
    authorization = basic(decodeURIComponent(url.username), decodeURIComponent(url.password));
  url.username = '';
  url.password = '';
  const headers: Record<string, string> = {
    accept: 'application/json',
    ...(authorization ? { authorization } : {}),
  };
  const tls = connection.tls;
  const https = url.protocol === 'https:';
  return new Promise((resolve, reject) => {
    const onResponse = (res: IncomingMessage): void => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size <= MAX_BODY_BYTES) chunks.push(chunk);
      });
      res.on('end', () => {
        clearTimeout(timer);
        const product = res.headers['x-elastic-product'];
        resolve({
          status: res.statusCode ?? 0,
          product: Array.isArray(product) ? product[0] : product,
          body: Buffer.concat(chunks).toString('utf8'),
        });
      });
      res.on('error', reject);
    };
    const req = https
      ? httpsRequest(
          url,
          {
            headers,
            // With only a fingerprint, the chain is checked against it below instead of a CA.
            rejectUnauthorized: (tls?.rejectUnauthorized ?? true) && !(tls?.caFingerprint && !tls.ca),
            ...(tls?.ca ? { ca: readPem(tls.ca, 'elasticsearch.tls.ca') } : {}),
          },
          onResponse,
        )
      : httpRequest(url, { headers }, onResponse);
    // Rejected here, not through destroy(err): the error a destroyed request emits is not always the one given.
    const timer = setTimeout(() => {
      reject(new DetectTimeout(`no answer within ${timeoutMs} ms`));
      req.destroy();
    }, timeoutMs);
    req.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    const fingerprint = tls?.caFingerprint;
    if (https && fingerprint && tls.rejectUnauthorized) {
      req.on('socket', (socket) => {
        socket.on('secureConnect', () => {
          if (socket instanceof TLSSocket && !chainHasFingerprint(socket, fingerprint))
            req.destroy(
              new Error('TLS: no certificate of the chain has the configured elasticsearch.tls.caFingerprint'),
            );
        });
      });
    }
    req.end();
  });
}

function chainHasFingerprint(socket: TLSSocket, fingerprint: string): boolean {
  const want = fingerprint.replace(/:/g, '').toUpperCase();
  const seen = new Set<string>();
  let cert = socket.getPeerCertificate(true);
  while (Object.keys(cert).length > 0 && !seen.has(cert.fingerprint256)) {
    seen.add(cert.fingerprint256);
    if (cert.fingerprint256.replace(/:/g, '').toUpperCase() === want) return true;
    cert = cert.issuerCertificate;
  }
  return false;
}
