'use strict';

/**
 * Example transform module for redis-es-sync.
 *
 * Referenced from a rule with `transform: ./transform-example.js` (the path is resolved
 * relative to the config file). The module is loaded once, with require(), when the
 * producer or worker starts; it must be CommonJS and export one function.
 *
 * It is called with the document the rule has already built:
 *   { key, db, type, value, ttl_ms?, content? }
 * where `value` holds the shaped value (for a hash or a JSON string: an object, after
 * fields.keep, coerce and fields.rename have been applied), and a context
 * { key, db, type } describing the Redis key.
 *
 * Return the document to index, or null (or undefined) for "no document": the key's
 * document is then deleted from Elasticsearch. `key` and `db` are always put back on
 * the returned document, so verify and reconcile can still find it.
 *
 * Keep it pure and fast: it runs for every change of every matching key, and a thrown
 * error rejects that change (the job fails and is kept for replay).
 */
module.exports = function transform(doc, { key, db, type }) {
  // Only hashes and JSON strings carry named fields; index anything else unchanged.
  const value = doc.value;
  if ((type !== 'hash' && type !== 'string') || value === null || typeof value !== 'object' || Array.isArray(value)) {
    return doc;
  }

  // Soft-deleted records (deleted = "1") must not be searchable: no document.
  if (value.deleted === '1' || value.deleted === 1 || value.deleted === true) {
    return null;
  }

  const first = typeof value.first === 'string' ? value.first.trim() : '';
  const last = typeof value.last === 'string' ? value.last.trim() : '';
  const fullName = [first, last].filter(Boolean).join(' ');

  return {
    ...doc,
    value: fullName ? { ...value, full_name: fullName } : value,
    // Extra top-level fields are indexed as they are; here, a readable origin of the document.
    origin: `db${db}/${key}`,
  };
};
