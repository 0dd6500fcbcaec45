import { keyFromBytes } from '../core/bytes';

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
