import type { TransportRequestOptions, TransportRequestPromise } from '@opensearch-project/opensearch/lib/Transport';
import type { SinkAwsConfig } from '../../platform/config/schema';
import { redactUrl } from '../../platform/logger';
import { bulkRequestBody } from '../bulk-body';
import { bulkOutcomes, searchResult, type BulkItemResponse, type SearchAnswer } from '../bulk-outcome';
import { KEY_SOURCE_FIELDS } from '../doc-key';
import { aliasActionsBody, aliasIndices } from '../aliases';
import {
  QueryRefusedError,
  type AliasAction,
  type BulkOperation,
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
  type SinkOptions,
} from '../port';
import { createOpenSearchClient, type OpenSearchClient } from './client';
import {
  describeOpenSearchError,
  errorType,
  isTransientOpenSearchError,
  openSearchCredentials,
  openSearchDependencyError,
} from './errors';

export interface OpenSearchSinkOptions extends SinkOptions {
  /** `sink.aws`: sign requests for Amazon OpenSearch Service. */
  aws?: SinkAwsConfig;
}

const BULK_FILTER = 'items.*.status,items.*.error';
const PIT_KEEP_ALIVE = '2m';

/** `_shard_doc` and `_id` values are never null. */
type SortValue = string | number | boolean;

/**
 * How a point in time is paged. `_shard_doc` (shard, then Lucene doc id) is the cheapest total
 * order, but OpenSearch 2.x does not know it ("No mapping found for [_shard_doc]"); there `_id` is
 * the one unique field every index has (sorting on it loads `_id` field data, which 2.x allows by
 * default: `indices.id_field_data.enabled`). `_doc` alone is no option: its values repeat across
 * shards, and search_after then skips documents (test/integration/sink/opensearch-pit.test.ts).
 */
type PitSort = '_shard_doc' | '_id';

export function createOpenSearchSink(options: OpenSearchSinkOptions): Sink {
  return new OpenSearchSink(options);
}

class OpenSearchSink implements Sink {
  readonly engine;
  private readonly client: OpenSearchClient;
  private readonly endpoint: string;
  private pitSort: PitSort = '_shard_doc';

  constructor(private readonly options: OpenSearchSinkOptions) {
    this.engine = options.engine;
    this.client = createOpenSearchClient(options.connection, options.aws, options.logger);
    this.endpoint = redactUrl(options.connection.url);
  }

  async bulk(operations: readonly BulkOperation[], options: RequestOptions = {}): Promise<ItemOutcome[]> {
    if (operations.length === 0) return [];
    const response = await withSignal(
      this.client.bulk(
        // Each body is already its NDJSON lines, so the request is one Buffer of them, as on
        // Elasticsearch: the client's transport sends a Buffer bulk body as it is (no ndserialize,
        // and its length is the Buffer's), though its types only name the array it would serialize.
        { body: bulkRequestBody(operations) as never, filter_path: BULK_FILTER },
        transport(options),
      ),
      options.signal,
    );
    const items = (response.body as { items?: Record<string, BulkItemResponse>[] }).items ?? [];
    return bulkOutcomes(operations, items);
  }

  isTransient(err: unknown): boolean {
    return isTransientOpenSearchError(err);
  }

  describeError(err: unknown): string {
    return describeOpenSearchError(err);
  }

  async *scan(index: string, options: ScanOptions = {}): AsyncGenerator<ScannedDoc[]> {
    if (!(await this.indexExists(index))) return;
    // A point in time sees only refreshed segments, and an idle shard skips its periodic refresh.
    await this.refresh(index);
    const pit = await this.client.createPit({ index: [index], keep_alive: PIT_KEEP_ALIVE });
    let pitId = pit.body.pit_id;
    let after: SortValue[] | undefined;
    try {
      for (;;) {
        const page = await this.page(pitId, options, after);
        if (page.pitId) pitId = page.pitId;
        const last = page.hits.at(-1);
        if (last === undefined) return;
        yield page.hits.map((h) => ({ index: h._index, id: h._id, source: h._source ?? {} }));
        after = last.sort;
      }
    } finally {
      await this.client.deletePit({ body: { pit_id: [pitId] } }).catch(() => undefined);
    }
  }

  private async page(
    pitId: string,
    options: ScanOptions,
    after: SortValue[] | undefined,
  ): Promise<{ pitId?: string; hits: Hit[] }> {
    const search = async (sort: PitSort): Promise<{ pitId?: string; hits: Hit[] }> => {
      const response = await this.client.search({
        body: {
          size: options.pageSize ?? 1000,
          pit: { id: pitId, keep_alive: PIT_KEEP_ALIVE },
          sort: [{ [sort]: 'asc' }],
          _source: options.sourceFields === true ? true : [...(options.sourceFields ?? KEY_SOURCE_FIELDS)],
          track_total_hits: false,
          ...(after ? { search_after: after } : {}),
        },
      });
      const body = response.body as unknown as { pit_id?: string; hits: { hits: Hit[] } };
      return { ...(body.pit_id ? { pitId: body.pit_id } : {}), hits: body.hits.hits };
    };
    try {
      return await search(this.pitSort);
    } catch (err) {
      // Learnt once per sink, on a first page (no search_after yet, so nothing to translate).
      if (this.pitSort === '_shard_doc' && after === undefined && mentionsShardDoc(err)) {
        this.pitSort = '_id';
        return search(this.pitSort);
      }
      throw err;
    }
  }

  async getDocuments(
    index: string,
    ids: readonly string[],
    options: GetOptions = {},
  ): Promise<(Record<string, unknown> | undefined)[]> {
    if (ids.length === 0) return [];
    const response = await withSignal(
      this.client.mget(
        {
          index,
          body: { ids: [...ids] },
          ...(options.sourceFields ? { _source_includes: [...options.sourceFields] } : {}),
        },
        transport(options),
      ),
      options.signal,
    );
    const docs = (response.body as { docs: MgetDoc[] }).docs;
    return docs.map((d) => {
      // A missing index answers every id with index_not_found_exception: none of them exists.
      if (d.error && d.error.type !== 'index_not_found_exception')
        throw new Error(`mget ${index}/${d._id}: ${d.error.type ?? 'error'}: ${d.error.reason ?? ''}`);
      return d.found ? (d._source ?? {}) : undefined;
    });
  }

  async search(index: string, body: Record<string, unknown>, options: SearchOptions = {}): Promise<SearchResult> {
    let response: SearchAnswer;
    try {
      response = (await withSignal(this.client.search({ index, body }, transport(options)), options.signal))
        .body as SearchAnswer;
    } catch (err) {
      if (isStatus(err, 400)) throw new QueryRefusedError(describeOpenSearchError(err), { cause: err });
      throw err;
    }
    return searchResult(response);
  }

  async count(index: string): Promise<number> {
    try {
      await this.refresh(index);
      const response = await this.client.count({ index });
      return response.body.count;
    } catch (err) {
      if (errorType(err) === 'index_not_found_exception') return 0;
      throw err;
    }
  }

  async indexExists(index: string): Promise<boolean> {
    const response = await this.client.indices.exists({ index });
    return response.body;
  }

  async createIndex(index: string, body: IndexBody, options: { alias?: string } = {}): Promise<'created' | 'exists'> {
    try {
      await this.client.indices.create({
        index,
        body: {
          settings: body.settings,
          mappings: body.mappings,
          ...(options.alias ? { aliases: { [options.alias]: { is_write_index: true } } } : {}),
        },
      });
      return 'created';
    } catch (err) {
      if (errorType(err) === 'resource_already_exists_exception') return 'exists';
      throw err;
    }
  }

  async deleteIndex(index: string): Promise<'deleted' | 'absent'> {
    try {
      await this.client.indices.delete({ index });
      return 'deleted';
    } catch (err) {
      if (errorType(err) === 'index_not_found_exception') return 'absent';
      throw err;
    }
  }

  async resolveIndex(name: string): Promise<IndexName> {
    try {
      const response = await this.client.indices.getAlias({ name });
      const indices = aliasIndices(response.body, name);
      if (indices.length > 0) return { kind: 'alias', indices };
    } catch (err) {
      // 404: no alias of that name (the answer may still be an index, asked below).
      if (!isStatus(err, 404)) throw err;
    }
    return (await this.indexExists(name)) ? { kind: 'index' } : { kind: 'missing' };
  }

  async updateAliases(actions: readonly AliasAction[]): Promise<void> {
    await this.client.indices.updateAliases({ body: aliasActionsBody(actions) });
  }

  async refresh(index: string): Promise<void> {
    await this.client.indices.refresh({ index });
  }

  /**
   * `_cluster/health` rather than `GET /`: any answer means the cluster is reachable (a red one
   * still answers 200; writes to its red indices fail and are retried). One try, bounded.
   */
  async health(timeoutMs: number): Promise<void> {
    await this.client.cluster.health({}, { requestTimeout: timeoutMs, maxRetries: 0 });
  }

  dependencyError(err: unknown, context: { timeoutMs?: number; tried?: string }) {
    const { connection, aws, sourceOf } = this.options;
    return openSearchDependencyError(
      this.endpoint,
      err,
      openSearchCredentials(connection, aws, sourceOf),
      sourceOf,
      context.timeoutMs,
      context.tried,
    );
  }

  async close(): Promise<void> {
    await this.client.close();
  }
}

interface Hit {
  _index: string;
  _id: string;
  _source?: Record<string, unknown>;
  sort: SortValue[];
}

interface MgetDoc {
  _id: string;
  found?: boolean;
  _source?: Record<string, unknown>;
  error?: { type?: string; reason?: string | null };
}

function isStatus(err: unknown, status: number): boolean {
  return typeof err === 'object' && err !== null && 'statusCode' in err && err.statusCode === status;
}

function transport(options: RequestOptions): TransportRequestOptions {
  return options.timeoutMs === undefined ? {} : { requestTimeout: options.timeoutMs };
}

/** The OpenSearch client takes no AbortSignal; its promise has `abort()`. */
async function withSignal<T>(request: TransportRequestPromise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return request;
  if (signal.aborted) request.abort();
  const onAbort = (): void => {
    request.abort();
  };
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    return await request;
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
}

function mentionsShardDoc(err: unknown): boolean {
  return (
    describeOpenSearchError(err).includes('_shard_doc') || JSON.stringify(errorBody(err) ?? '').includes('_shard_doc')
  );
}

function errorBody(err: unknown): unknown {
  return typeof err === 'object' && err !== null && 'body' in err ? err.body : undefined;
}
