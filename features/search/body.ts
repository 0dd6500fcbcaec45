import { validateDsl } from './dsl';
import { parseSearchQuery, SearchRequestError, type SearchQuery, type SearchSettings } from './query';

const BODY_FIELDS = ['query', 'filter', 'sort', 'size', 'search_after'];

/**
 * Validates the JSON body of `POST /search/:index`: `query` is the restricted DSL, the rest
 * means what the GET parameters mean and goes through the same checks.
 */
export function parseSearchBody(body: unknown, settings: SearchSettings): SearchQuery {
  body ??= {};
  if (typeof body !== 'object' || Array.isArray(body))
    throw new SearchRequestError(400, 'the body must be a JSON object');
  const fields = body as Record<string, unknown>;
  for (const name of Object.keys(fields)) {
    if (!BODY_FIELDS.includes(name))
      throw new SearchRequestError(400, `${name}: unknown field (expected ${BODY_FIELDS.join(', ')})`);
  }

  const params: Record<string, unknown> = {};
  const { filter, sort, size, search_after: after } = fields;
  if (filter !== undefined) {
    if (typeof filter !== 'object' || filter === null || Array.isArray(filter))
      throw new SearchRequestError(400, 'filter must be an object of field: value');
    for (const [field, value] of Object.entries(filter)) {
      if (!['string', 'number', 'boolean'].includes(typeof value))
        throw new SearchRequestError(400, `filter.${field} must be a string, number or boolean`);
      params[`filter.${field}`] = String(value);
    }
  }
  if (sort !== undefined) {
    const parts = typeof sort === 'string' ? [sort] : sort;
    if (!Array.isArray(parts) || !parts.every((p) => typeof p === 'string'))
      throw new SearchRequestError(400, 'sort must be "field:order" or an array of them');
    params.sort = parts.join(',');
  }
  if (size !== undefined) {
    if (typeof size !== 'number') throw new SearchRequestError(400, 'size must be a positive integer');
    params.size = String(size);
  }
  if (after !== undefined) params.search_after = JSON.stringify(after);

  const parsed = parseSearchQuery(params, settings);
  return fields.query === undefined ? parsed : { ...parsed, dsl: validateDsl(fields.query, settings) };
}
