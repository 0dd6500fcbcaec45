import { keyFromBytes } from '../core/bytes';
import type { Client } from '@elastic/elasticsearch';

export interface ScannedDoc {
  index: string;
  id: string;
  source: Record<string, unknown>;
}

/**
 * Walks every document of an index in pages (point in time + search_after), so indices of
 * any size are read with bounded memory; everything indexed before the call is seen.
 * Missing indices yield nothing.
 */
export async function* scanIndex(
  es: Client,
  index: string,
  opts: { pageSize?: number; sourceFields?: string[] | true } = {},
): AsyncGenerator<ScannedDoc[]> {
  const exists = await es.indices.exists({ index });
  if (!exists) return;
  // A point in time sees only refreshed segments, and an idle shard skips its periodic refresh:
  // without this, documents indexed just before the scan would be invisible to it.
  await es.indices.refresh({ index });
  const pit = await es.openPointInTime({ index, keep_alive: '2m' });
  let pitId = pit.id;
  let after: (string | number | boolean | null)[] | undefined;
  try {
    for (;;) {
      const page = await es.search({
        size: opts.pageSize ?? 1000,
        pit: { id: pitId, keep_alive: '2m' },
        sort: [{ _shard_doc: 'asc' }],
        _source: opts.sourceFields ?? [...KEY_SOURCE_FIELDS],
        ...(after ? { search_after: after } : {}),
        track_total_hits: false,
      });
      if (page.pit_id) pitId = page.pit_id;
      const hits = page.hits.hits;
      const last = hits.at(-1);
      if (last === undefined) return;
      yield hits.map((h) => ({
        index: h._index,
        id: h._id ?? '',
        source: (h._source ?? {}) as Record<string, unknown>,
      }));
      after = last.sort as (string | number | boolean | null)[];
    }
  } finally {
    await es.closePointInTime({ id: pitId }).catch(() => undefined);
  }
}

/** The `_source` fields that name a document's key. */
export const KEY_SOURCE_FIELDS = ['key', 'key_base64', 'db'] as const;

/**
 * The Redis key a document stands for (escaped, shared/core/bytes.ts), from the fields every synced
 * document carries: `key` for a name that is UTF-8 text, `key_base64` for one that is not.
 */
export function docKey(source: Record<string, unknown>): { db: number; key: string } | undefined {
  const { key, key_base64: keyBase64, db } = source;
  if (typeof db !== 'number') return undefined;
  if (typeof key === 'string') return { db, key };
  if (typeof keyBase64 === 'string') return { db, key: keyFromBytes(Buffer.from(keyBase64, 'base64')) };
  return undefined;
}
