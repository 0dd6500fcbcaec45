import { Client } from '@opensearch-project/opensearch';
import type { SyncDocument } from '../shared/core/mapping/document';
import { BULK_HELPER, type BaselineDocument, type EngineClient } from './engine';

/**
 * The harness's OpenSearch client: the same baselines and probes as the Elasticsearch one in
 * support.ts, through @opensearch-project/opensearch (its `helpers.bulk` is the bulk limit).
 */
export function openSearchEngine(url: string): EngineClient {
  const client = new Client({ node: url, requestTimeout: 120000 });
  return {
    product: 'opensearch',
    async deleteIndices(pattern) {
      await client.indices.delete({
        index: pattern,
        allow_no_indices: true,
        ignore_unavailable: true,
        expand_wildcards: 'all',
      });
    },
    async createIndex(index, settings, mappings) {
      await client.indices.create({ index, body: { settings, mappings } });
    },
    async refresh(index) {
      await client.indices.refresh({ index });
    },
    async count(index) {
      return (await client.count({ index })).body.count;
    },
    async indexOne(index, id, document: SyncDocument) {
      await client.index({ index, id, body: document });
    },
    async seqOf(index, ids) {
      const res = await client.mget({ index, body: { ids: [...ids] }, _source_includes: ['value.seq'] });
      const docs = res.body.docs as { found?: boolean; _source?: { value?: { seq?: string } } }[];
      return docs.map((d) => (d.found ? Number(d._source?.value?.seq ?? 0) : 0));
    },
    async bulkHelper(index, docs) {
      const stats = await client.helpers.bulk<BaselineDocument>({
        datasource: docs[Symbol.asyncIterator](),
        onDocument: (d) => [{ index: { _index: index, _id: d.id } }, d.doc],
        ...BULK_HELPER,
      });
      return stats.successful;
    },
    async close() {
      await client.close();
    },
  };
}
