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

/**
 * The concrete index of one generation of `index`. Everything reads and writes `index`, an
 * alias of the current generation, so `rebuild` can build the next one beside it and swap.
 */
export function generationIndex(index: string, generation: number): string {
  return `${index}-g${generation}`;
}

/** The generation number of a concrete index of `index`, or undefined when it is not one. */
export function generationOf(index: string, concrete: string): number | undefined {
  const prefix = `${index}-g`;
  if (!concrete.startsWith(prefix)) return undefined;
  const n = concrete.slice(prefix.length);
  return /^[1-9]\d*$/.test(n) ? Number(n) : undefined;
}

/**
 * Creates every index the rules write to that does not exist yet, as generation 1 behind an
 * alias of the index's name. A concrete index already under the name (a deployment from before
 * aliases) is left as it is: the first `rebuild` turns it into an alias. Safe to race between pods.
 */
export async function ensureIndices(
  sink: Sink,
  router: KeyRouter,
  mapping: AppConfig['mapping'],
  logger: Logger,
): Promise<void> {
  for (const index of router.indices()) {
    if ((await sink.resolveIndex(index)).kind !== 'missing') continue;
    const first = generationIndex(index, 1);
    const created = await sink.createIndex(first, indexBody(index, mapping), { alias: index });
    if (created === 'created') logger.info({ index, generation: first }, 'created index');
    // The generation was there without its alias (an earlier start stopped between the two, or
    // another pod is creating it right now): adding the alias again is harmless.
    else await sink.updateAliases([{ add: { index: first, alias: index } }]);
  }
}
