import type { AppConfig } from '../platform/config/schema';
import type { Logger } from '../platform/logger';
import type { KeyRouter } from '../core/mapping/router';
import type { IndexBody, Sink } from './port';

/**
 * Delete tombstones must outlive any write that could still arrive with an older version;
 * workers re-read before every attempt, so minutes are plenty, the 60 s default is tight.
 */
const GC_DELETES = '5m';

// Lucene refuses a keyword over 32,766 bytes; 8,191 characters fit whatever they are. A longer
// key is still in `_source` (and its id is a hash), it is only not searchable by term.
const META_PROPERTIES = {
  key: { type: 'keyword', ignore_above: 8191 },
  key_base64: { type: 'keyword', ignore_above: 8191 },
  refused: { type: 'keyword', ignore_above: 1024 },
  db: { type: 'integer' },
  type: { type: 'keyword' },
  ttl_ms: { type: 'long' },
};

/**
 * The default index holds every Redis type under `value` (a string here, an object or an
 * array there), which no single dynamic mapping accepts. So `value` is kept exactly but not
 * indexed, and `content` (its strings) is what full-text search reads.
 */
export const DEFAULT_INDEX_MAPPINGS = {
  dynamic: false,
  properties: {
    ...META_PROPERTIES,
    value: { type: 'object', enabled: false },
    content: { type: 'text' },
  },
};

export function indexBody(index: string, mapping: AppConfig['mapping']): IndexBody {
  const defined = mapping.indices[index];
  const settings = { 'index.gc_deletes': GC_DELETES, ...(defined?.settings ?? {}) };
  if (defined?.mappings) return { settings, mappings: defined.mappings };
  if (index === mapping.defaultIndex) return { settings, mappings: DEFAULT_INDEX_MAPPINGS };
  // Rule indices map `value` dynamically: one rule usually means one value shape.
  return { settings, mappings: { properties: META_PROPERTIES } };
}

/** Creates every index the rules write to that does not exist yet. Safe to race between pods. */
export async function ensureIndices(
  sink: Sink,
  router: KeyRouter,
  mapping: AppConfig['mapping'],
  logger: Logger,
): Promise<void> {
  for (const index of router.indices()) {
    if ((await sink.createIndex(index, indexBody(index, mapping))) === 'created')
      logger.info({ index }, 'created index');
  }
}
