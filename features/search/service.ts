import { createHash } from 'node:crypto';
import { keyArg } from '../../shared/core/bytes';
import { docKey, KEY_SOURCE_FIELDS } from '../../shared/sink/doc-key';
import { QueryRefusedError, type Sink } from '../../shared/sink/port';
import { readKeyStates } from '../../shared/core/key-state';
import type { Logger } from '../../shared/platform/logger';
import { documentId, toOperation, type JsonValue, type SyncDocument } from '../../shared/core/mapping/document';
import type { KeyRouter } from '../../shared/core/mapping/router';
import { searchCache, searchDuration } from '../../shared/platform/metrics';
import type { RedisClient, SourceRedis } from '../../shared/platform/redis';
import type { SearchCache } from './cache';
import { generationKey, settlingKey } from './generation';
import { SearchRequestError, searchBody, type SearchQuery, type SearchSettings, type SortValue } from './query';

/** A hit: the document's fields as indexed (docs/bytes.md), its id and score. */
export interface SearchHit extends HitSource {
  id: string;
  score: number | null;
}

export interface SearchPage {
  hits: SearchHit[];
  total: number;
  /** `search_after` for the next page; null on the last one. */
  next: SortValue[] | null;
}

export interface SearchServiceDeps {
  sink: Sink;
  source: SourceRedis;
  /** Holds the generation counters. */
  queueRedis: RedisClient;
  /** Cached answers: in the queue Redis or a Redis of their own, bounded either way. */
  cache: SearchCache;
  prefix: string;
  router: KeyRouter;
  databases: readonly number[];
  settings: SearchSettings;
  logger: Logger;
}

const HIT_FIELDS = ['key', 'key_base64', 'db', 'type', 'value', 'ttl_ms', 'refused'];

/** The indexed fields a hit carries. */
interface HitSource {
  key?: string;
  key_base64?: string;
  refused?: string;
  db: number;
  type: string;
  value?: JsonValue;
  ttl_ms?: number;
}

/** The read path for applications: searches through the search engine with a cache, documents from Redis. */
export class SearchService {
  constructor(private readonly deps: SearchServiceDeps) {}

  get settings(): SearchSettings {
    return this.deps.settings;
  }

  /** Only the indices the mapping writes to may be read through this API. */
  checkIndex(index: string): void {
    if (!this.deps.router.indices().includes(index))
      throw new SearchRequestError(404, `index ${JSON.stringify(index)} is not one this service syncs`);
  }

  /** A page, and whether the cache answered it (the `x-cache` header of the HTTP answer). */
  async search(index: string, query: SearchQuery): Promise<{ page: SearchPage; cache: 'hit' | 'miss' }> {
    this.checkIndex(index);
    const { queueRedis, prefix } = this.deps;
    const timer = searchDuration.startTimer();
    // The generation is read before searching: should a bulk land during the search, the
    // answer is stored under the old generation, which nobody asks for any more.
    const [generation, settling] = await queueRedis.mget(generationKey(prefix, index), settlingKey(prefix, index));
    const cacheKey = `${prefix}:search:${createHash('sha256')
      .update(JSON.stringify([index, generation ?? '0', query]))
      .digest('hex')}`;
    if (this.deps.cache.enabled) {
      const cached = await this.deps.cache.get(cacheKey);
      if (cached !== null) {
        searchCache.inc({ result: 'hit' });
        timer({ cache: 'hit' });
        return { page: JSON.parse(cached) as SearchPage, cache: 'hit' };
      }
    }
    searchCache.inc({ result: 'miss' });
    const { page, complete } = await this.query(index, query);
    if (this.deps.cache.enabled && complete && settling === null)
      await this.deps.cache.set(cacheKey, JSON.stringify(page));
    timer({ cache: 'miss' });
    return { page, cache: 'miss' };
  }

  private async query(index: string, query: SearchQuery): Promise<{ page: SearchPage; complete: boolean }> {
    const { sink, settings } = this.deps;
    let response;
    try {
      response = await sink.search(
        index,
        { ...searchBody(query, settings.timeoutMs), _source: HIT_FIELDS },
        { timeoutMs: settings.timeoutMs },
      );
    } catch (err) {
      // A query the engine cannot parse or run (bad syntax, sort on a text field) is the caller's to fix.
      if (err instanceof QueryRefusedError)
        throw new SearchRequestError(
          400,
          `${sink.engine.product === 'opensearch' ? 'OpenSearch' : 'Elasticsearch'} refused the query: ${err.message}`,
        );
      throw err;
    }
    const hits = response.hits.map((h) => {
      const src = h.source as unknown as HitSource;
      const hit: SearchHit = { id: h.id, db: src.db, type: src.type, score: h.score };
      for (const f of ['key', 'key_base64', 'value', 'ttl_ms', 'refused'] as const)
        if (src[f] !== undefined) Object.assign(hit, { [f]: src[f] });
      return hit;
    });
    const last = response.hits.at(-1);
    const next = hits.length === query.size && last?.sort ? (last.sort as SortValue[]) : null;
    // A timed-out search holds what the shards found in time: served, never cached.
    return { page: { hits, total: response.total.value, next }, complete: response.complete };
  }

  /** The document `index`/`id` maps to, built from the key's current value in Redis; 404 when it is gone. */
  async document(index: string, id: string): Promise<{ index: string; id: string; doc: SyncDocument }> {
    this.checkIndex(index);
    // No document has an empty id: the empty key's is `sha256:` + the hash of nothing (documentId).
    if (id === '')
      throw new SearchRequestError(
        404,
        `no key maps to an empty id in ${index}; the empty key's id is ${documentId('')}`,
      );
    const target = (await this.keyFromId(index, id)) ?? (await this.keyFromIndex(index, id));
    const gone = new SearchRequestError(404, `no key maps to ${index}/${id}`);
    if (!target) throw gone;
    const route = this.deps.router.route(target.db, target.key);
    if (route?.index !== index || route.id !== id) throw gone;
    const [state] = await readKeyStates(this.deps.source.db(target.db), [target.key]);
    if (state === undefined) throw gone; // one state per key asked for; this only guards the index
    const op = toOperation(route, route.shape, target.db, target.key, state);
    if (op.op !== 'index') throw gone;
    const bytes = Buffer.byteLength(JSON.stringify(op.doc));
    if (bytes > this.deps.settings.maxDocumentBytes) {
      throw new SearchRequestError(
        413,
        `the document is ${bytes} bytes, over search.maxDocumentBytes (${this.deps.settings.maxDocumentBytes}); search for its fields instead`,
      );
    }
    return { index, id, doc: op.doc };
  }

  /** Ids that are the key itself (`{key}`, the default) or `{db}:{key}` (the default with several databases). */
  private async keyFromId(index: string, id: string): Promise<{ db: number; key: string } | undefined> {
    const candidates: { db: number; key: string }[] = this.deps.databases.map((db) => ({ db, key: id }));
    const [, db, key] = /^(\d+):([\s\S]*)$/.exec(id) ?? [];
    if (db !== undefined && key !== undefined && this.deps.databases.includes(Number(db)))
      candidates.push({ db: Number(db), key });
    for (const c of candidates) {
      const route = this.deps.router.route(c.db, c.key);
      if (route?.index === index && route.id === id && (await this.deps.source.db(c.db).exists(keyArg(c.key))) === 1)
        return c;
    }
    return undefined;
  }

  /** Other id templates cannot be reversed: the indexed document names its key. */
  private async keyFromIndex(index: string, id: string): Promise<{ db: number; key: string } | undefined> {
    const [found] = await this.deps.sink.getDocuments(index, [id], {
      timeoutMs: this.deps.settings.timeoutMs,
      sourceFields: KEY_SOURCE_FIELDS,
    });
    // docKey is the one place that knows how a document names its key (binary keys included).
    return found ? docKey(found) : undefined;
  }
}
