import { bulkOutcomes, searchResult, type BulkItemResponse, type SearchAnswer } from '../bulk-outcome';
import { bulkRequestBody } from '../bulk-body';
import { KEY_SOURCE_FIELDS } from '../doc-key';
import { aliasActionsBody, aliasIndices } from '../aliases';
import {
  QueryRefusedError,
  type AliasAction,
  type BulkOperation,
  type EngineInfo,
  type GetOptions,
  type IndexBody,
  type IndexName,
  type ItemOutcome,
  type RequestOptions,
  type ScannedDoc,
  type ScanOptions,
  type SearchOptions,
  type SearchResult,
  type Sink,
} from '../port';
import type { SourceOf } from '../../platform/dependencies';
import type { DependencyError } from '../../platform/errors';
import { redactUrl } from '../../platform/logger';
import type { AppConfig } from '../../platform/config/schema';
import type { EsRequestOptions, EsTransportClient } from './clients';
import { credentialsOrigin } from '../credentials';
import { describeEsError, errorType, esError, isResponseError, isTransientEsError, refusalReason } from './errors';

/** Only each item's status and error are read; the rest of the answer is not worth parsing. */
const BULK_FILTER = 'items.*.status,items.*.error';
const PIT_KEEP_ALIVE = '2m';

/**
 * Elasticsearch 8.x and 9.x behind the sink port. Everything goes through the client's
 * transport, whose requests are the same on both majors; the client (chosen by major) adds the
 * compatibility headers and the product check.
 */
export class ElasticsearchSink implements Sink {
  private readonly endpoint: string;
  private readonly credentials: string;

  constructor(
    readonly engine: EngineInfo,
    private readonly client: EsTransportClient,
    connection: AppConfig['elasticsearch'],
    private readonly sourceOf: SourceOf,
  ) {
    this.endpoint = redactUrl(connection.url);
    this.credentials = credentialsOrigin(connection, sourceOf);
  }

  async bulk(operations: readonly BulkOperation[], options: RequestOptions = {}): Promise<ItemOutcome[]> {
    // Elasticsearch refuses a bulk without a line (`request body is required`).
    if (operations.length === 0) return [];
    const response = await this.client.transport.request<{ items?: Record<string, BulkItemResponse | undefined>[] }>(
      {
        method: 'POST',
        path: '/_bulk',
        bulkBody: bulkRequestBody(operations),
        querystring: { filter_path: BULK_FILTER },
      },
      requestOptions(options),
    );
    const items = response.items ?? [];
    return bulkOutcomes(operations, items);
  }

  isTransient(err: unknown): boolean {
    return isTransientEsError(err);
  }

  describeError(err: unknown): string {
    return describeEsError(err);
  }

  async *scan(index: string, options: ScanOptions = {}): AsyncGenerator<ScannedDoc[]> {
    if (!(await this.indexExists(index))) return;
    // A point in time sees only refreshed segments, and an idle shard skips its periodic refresh:
    // without this, documents indexed just before the scan would be invisible to it.
    await this.refresh(index);
    const pit = await this.client.transport.request<{ id: string }>({
      method: 'POST',
      path: `/${encodeURIComponent(index)}/_pit`,
      querystring: { keep_alive: PIT_KEEP_ALIVE },
    });
    let pitId = pit.id;
    let after: unknown[] | undefined;
    try {
      for (;;) {
        const page = await this.client.transport.request<{
          pit_id?: string;
          hits: { hits: { _index: string; _id?: string; _source?: Record<string, unknown>; sort?: unknown[] }[] };
        }>({
          method: 'POST',
          path: '/_search',
          body: {
            size: options.pageSize ?? 1000,
            pit: { id: pitId, keep_alive: PIT_KEEP_ALIVE },
            sort: [{ _shard_doc: 'asc' }],
            _source: options.sourceFields ?? [...KEY_SOURCE_FIELDS],
            ...(after ? { search_after: after } : {}),
            track_total_hits: false,
          },
        });
        if (page.pit_id) pitId = page.pit_id;
        const hits = page.hits.hits;
        const last = hits.at(-1);
        if (last === undefined) return;
        yield hits.map((h) => ({ index: h._index, id: h._id ?? '', source: h._source ?? {} }));
        after = last.sort;
      }
    } finally {
      await this.client.transport
        .request({ method: 'DELETE', path: '/_pit', body: { id: pitId } })
        .catch(() => undefined);
    }
  }

  async getDocuments(
    index: string,
    ids: readonly string[],
    options: GetOptions = {},
  ): Promise<(Record<string, unknown> | undefined)[]> {
    if (ids.length === 0) return [];
    const response = await this.client.transport.request<{
      docs: { found?: boolean; _source?: Record<string, unknown> }[];
    }>(
      {
        method: 'POST',
        path: `/${encodeURIComponent(index)}/_mget`,
        body: { ids: [...ids] },
        ...(options.sourceFields ? { querystring: { _source: options.sourceFields.join(',') } } : {}),
      },
      requestOptions(options),
    );
    // A missing index answers each doc with an error instead of `found`: none is there.
    return ids.map((_, i) => {
      const doc = response.docs[i];
      return doc?.found ? (doc._source ?? {}) : undefined;
    });
  }

  async search(index: string, body: Record<string, unknown>, options: SearchOptions = {}): Promise<SearchResult> {
    let response: SearchAnswer;
    try {
      response = await this.client.transport.request(
        { method: 'POST', path: `/${encodeURIComponent(index)}/_search`, body },
        requestOptions(options),
      );
    } catch (err) {
      if (isResponseError(err) && err.statusCode === 400)
        throw new QueryRefusedError(refusalReason(err), { cause: err });
      throw err;
    }
    return searchResult(response);
  }

  async count(index: string): Promise<number> {
    if (!(await this.indexExists(index))) return 0;
    await this.refresh(index);
    const { count } = await this.client.transport.request<{ count: number }>({
      method: 'POST',
      path: `/${encodeURIComponent(index)}/_count`,
    });
    return count;
  }

  async indexExists(index: string): Promise<boolean> {
    const { statusCode } = await this.client.transport.request(
      { method: 'HEAD', path: `/${encodeURIComponent(index)}` },
      { ignore: [404], meta: true },
    );
    return statusCode === 200;
  }

  async createIndex(index: string, body: IndexBody, options: { alias?: string } = {}): Promise<'created' | 'exists'> {
    if (await this.indexExists(index)) return 'exists';
    try {
      await this.client.transport.request({
        method: 'PUT',
        path: `/${encodeURIComponent(index)}`,
        body: {
          settings: body.settings,
          mappings: body.mappings,
          ...(options.alias ? { aliases: { [options.alias]: { is_write_index: true } } } : {}),
        },
      });
      return 'created';
    } catch (err) {
      // Another pod created it between the check and the create.
      if (errorType(err) === 'resource_already_exists_exception') return 'exists';
      throw err;
    }
  }

  async deleteIndex(index: string): Promise<'deleted' | 'absent'> {
    const { statusCode } = await this.client.transport.request(
      { method: 'DELETE', path: `/${encodeURIComponent(index)}` },
      { ignore: [404], meta: true },
    );
    return statusCode === 404 ? 'absent' : 'deleted';
  }

  async resolveIndex(name: string): Promise<IndexName> {
    const { statusCode, body } = await this.client.transport.request(
      { method: 'GET', path: `/_alias/${encodeURIComponent(name)}` },
      { ignore: [404], meta: true },
    );
    const indices = statusCode === 200 ? aliasIndices(body, name) : [];
    if (indices.length > 0) return { kind: 'alias', indices };
    return (await this.indexExists(name)) ? { kind: 'index' } : { kind: 'missing' };
  }

  async updateAliases(actions: readonly AliasAction[]): Promise<void> {
    await this.client.transport.request({ method: 'POST', path: '/_aliases', body: aliasActionsBody(actions) });
  }

  async refresh(index: string): Promise<void> {
    await this.client.transport.request({ method: 'POST', path: `/${encodeURIComponent(index)}/_refresh` });
  }

  /**
   * `_cluster/health` rather than `GET /`: some distributions, like the integ-test build,
   * answer 405 there. Any answer means the cluster is reachable; a red cluster still answers
   * 200 and only the writes to its red indices fail, which the worker retries, so status colour
   * is not readiness. One try, bounded: a probe must answer quickly.
   */
  async health(timeoutMs: number): Promise<void> {
    await this.client.transport.request(
      { method: 'GET', path: '/_cluster/health' },
      { requestTimeout: timeoutMs, maxRetries: 0 },
    );
  }

  dependencyError(err: unknown, context: { timeoutMs?: number; tried?: string }): DependencyError {
    return esError(this.endpoint, err, this.credentials, this.sourceOf, context.timeoutMs, context.tried);
  }

  close(): Promise<void> {
    return this.client.close();
  }
}

function requestOptions(options: RequestOptions): EsRequestOptions {
  return {
    ...(options.signal ? { signal: options.signal } : {}),
    ...(options.timeoutMs !== undefined ? { requestTimeout: options.timeoutMs } : {}),
  };
}
