import type { AppConfig } from '../../shared/platform/config/schema';
import { SyncError } from '../../shared/platform/errors';

export type SearchSettings = AppConfig['search'];
export type SortValue = string | number | boolean | null;

/** A refused request: `status` is the HTTP answer (400 bad query, 404 unknown index or id). */
export class SearchRequestError extends SyncError {
  override readonly name = 'SearchRequestError';
  readonly code = 'SEARCH_REQUEST';
  constructor(
    readonly status: 400 | 404 | 413 | 429,
    message: string,
  ) {
    super(message);
  }
}

/** One page of a search, validated and in a canonical form (the cache key is derived from it). */
export interface SearchQuery {
  q?: string;
  /** The restricted query DSL of the body form, validated, keys sorted (see dsl.ts). */
  dsl?: Record<string, unknown>;
  /** Sorted by field name. */
  filters: [string, string][];
  sort: { field: string; order: 'asc' | 'desc' }[];
  size: number;
  searchAfter?: SortValue[];
}

const FIELD = /^[A-Za-z0-9_@][A-Za-z0-9_.@-]*$/;
// A term starting with * or ? makes Elasticsearch walk every term of the index.
const LEADING_WILDCARD = /(^|[\s(:+\-!])[*?]/;
// Regular expressions (`/…/` in query_string) compile into automata whose size grows with the
// pattern; Elasticsearch's own cap (index.max_regex_length, 1000) is far too generous for an API.
const REGEX_TERM = /(?:^|[\s(:+\-!])\/((?:[^/\\]|\\.)*)\//g;
export const MAX_REGEX_LENGTH = 100;
/** Repetition operators one regular expression may hold. */
export const MAX_REGEX_REPEATS = 10;
/** Ceiling on the automaton Elasticsearch may build for one regexp or wildcard (its default: 10,000). */
export const MAX_DETERMINIZED_STATES = 2000;
/** Each fuzzy term is expanded to at most this many terms, all sharing its first character. */
export const FUZZY_MAX_EXPANSIONS = 10;
export const FUZZY_PREFIX_LENGTH = 1;
const QUERY_WORDS = /[^\s()+\-!|&"~^:{}[\]/\\]+/g;
const OPERATORS = new Set(['AND', 'OR', 'NOT', 'TO']);
const FUZZY_MARK = /[^\s~]~(?:[0-2](?![.\d])|(?=[\s)]|$))/g;

/**
 * What a query costs Elasticsearch grows with its terms, its fuzzy terms (each expands into
 * up to FUZZY_MAX_EXPANSIONS terms) and its regular expressions; this counts the first two
 * over a whole request, so `q` and the body share one budget each.
 */
export class QueryBudget {
  private terms = 0;
  private fuzzy = 0;
  constructor(private readonly settings: SearchSettings) {}

  addText(text: string, path: string, fuzzyAll = false): void {
    const words = (text.match(QUERY_WORDS) ?? []).filter((w) => !OPERATORS.has(w)).length;
    this.terms += words;
    if (this.terms > this.settings.maxQueryTerms)
      throw new SearchRequestError(
        400,
        `${path}: more than ${this.settings.maxQueryTerms} terms in one search (search.maxQueryTerms)`,
      );
    this.fuzzy += fuzzyAll ? words : (text.match(FUZZY_MARK) ?? []).length;
    if (this.fuzzy > this.settings.maxFuzzyTerms)
      throw new SearchRequestError(
        400,
        `${path}: more than ${this.settings.maxFuzzyTerms} fuzzy terms in one search (search.maxFuzzyTerms)`,
      );
  }
}

/**
 * One rule for every regular expression, in `q`, in a body's query_string and in a regexp
 * clause: bounded length, no leading wildcard (`.`, `*`, `?`: a scan of every term), a bounded
 * number of repetitions and none nested (`(a+)+`), whose automata explode.
 */
export function checkRegexp(pattern: string, path: string): void {
  if (pattern.length === 0) throw new SearchRequestError(400, `${path}: must not be empty`);
  if (pattern.length > MAX_REGEX_LENGTH)
    throw new SearchRequestError(
      400,
      `${path}: regular expressions are limited to ${MAX_REGEX_LENGTH} characters (got ${pattern.length})`,
    );
  if (/^[*?.]/.test(pattern))
    throw new SearchRequestError(400, `${path}: leading wildcards are not allowed: they scan every term of the index`);
  const repeats = (pattern.replace(/\\./g, '').match(/[*+?]|\{\d*,?\d*\}/g) ?? []).length;
  if (repeats > MAX_REGEX_REPEATS)
    throw new SearchRequestError(400, `${path}: more than ${MAX_REGEX_REPEATS} repetitions in one regular expression`);
  if (/[*+}]\)[*+?{]/.test(pattern.replace(/\\./g, '')))
    throw new SearchRequestError(400, `${path}: nested repetitions are not allowed`);
}

/** Refuses query_string syntax that is too long, starts a term with a wildcard, holds a costly regular expression or too many (fuzzy) terms. */
export function checkQueryString(
  q: string,
  settings: SearchSettings,
  label: string,
  budget: QueryBudget = new QueryBudget(settings),
): void {
  if (q.length > settings.maxQueryLength)
    throw new SearchRequestError(
      400,
      `${label} is ${q.length} characters, over the limit of ${settings.maxQueryLength}`,
    );
  if (LEADING_WILDCARD.test(q))
    throw new SearchRequestError(
      400,
      `${label}: leading wildcards (*foo, ?foo) are not allowed: they scan every term of the index`,
    );
  for (const [, regexp] of q.matchAll(REGEX_TERM)) if (regexp !== undefined) checkRegexp(regexp, label);
  budget.addText(q.replace(REGEX_TERM, ' '), label);
}

/** Caps forced on every query_string, from `q` or a body: what its fuzzy terms and regexps may cost. */
export const QUERY_STRING_CAPS = {
  allow_leading_wildcard: false,
  fuzzy_max_expansions: FUZZY_MAX_EXPANSIONS,
  fuzzy_prefix_length: FUZZY_PREFIX_LENGTH,
  max_determinized_states: MAX_DETERMINIZED_STATES,
} as const;

/** Validates the query string parameters of `GET /search/:index`. */
export function parseSearchQuery(params: Record<string, unknown>, settings: SearchSettings): SearchQuery {
  const one = (name: string): string | undefined => {
    const v = params[name];
    if (v === undefined) return undefined;
    if (typeof v !== 'string') throw new SearchRequestError(400, `${name} must be given once`);
    return v;
  };

  const q = one('q');
  if (q !== undefined) checkQueryString(q, settings, 'q');

  const filters: [string, string][] = [];
  for (const [name, value] of Object.entries(params)) {
    if (!name.startsWith('filter.')) {
      if (!['q', 'sort', 'size', 'search_after'].includes(name))
        throw new SearchRequestError(
          400,
          `unknown parameter ${name} (expected q, filter.<field>, sort, size, search_after)`,
        );
      continue;
    }
    const field = name.slice('filter.'.length);
    if (!FIELD.test(field)) throw new SearchRequestError(400, `${name}: not a field name`);
    if (typeof value !== 'string') throw new SearchRequestError(400, `${name} must be given once`);
    filters.push([field, value]);
  }
  filters.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));

  const sort: SearchQuery['sort'] = [];
  const sortParam = one('sort');
  if (sortParam !== undefined) {
    for (const part of sortParam.split(',')) {
      const [, field, order] = /^([^:]+)(?::(asc|desc))?$/.exec(part.trim()) ?? [];
      if (field === undefined || !FIELD.test(field))
        throw new SearchRequestError(400, `sort: ${JSON.stringify(part)} is not field, field:asc or field:desc`);
      sort.push({ field, order: (order as 'asc' | 'desc' | undefined) ?? 'asc' });
    }
  }

  let size = settings.defaultPageSize;
  const sizeParam = one('size');
  if (sizeParam !== undefined) {
    size = Number(sizeParam);
    if (!/^\d+$/.test(sizeParam) || size < 1) throw new SearchRequestError(400, 'size must be a positive integer');
    if (size > settings.maxPageSize)
      throw new SearchRequestError(400, `size ${size} is over the maximum page size of ${settings.maxPageSize}`);
  }

  let searchAfter: SortValue[] | undefined;
  const after = one('search_after');
  if (after !== undefined) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(after);
    } catch {
      parsed = undefined;
    }
    const scalar = (v: unknown): boolean => v === null || ['string', 'number', 'boolean'].includes(typeof v);
    if (!Array.isArray(parsed) || parsed.length === 0 || !parsed.every(scalar)) {
      throw new SearchRequestError(400, 'search_after must be the JSON array `next` of the previous page');
    }
    searchAfter = parsed as SortValue[];
  }

  return { q: q === undefined || q.trim() === '' ? undefined : q, filters, sort, size, searchAfter };
}

/**
 * The Elasticsearch request for a page. `key` and `db` end every sort: together they are
 * unique, so search_after pages neither repeat nor skip documents.
 */
export function searchBody(query: SearchQuery, timeoutMs: number): Record<string, unknown> {
  const must = query.dsl
    ? [query.dsl]
    : query.q
      ? [{ query_string: { query: query.q, ...QUERY_STRING_CAPS } }]
      : [{ match_all: {} }];
  const filter = query.filters.map(([field, value]) => ({ term: { [field]: value } }));
  const sort: Record<string, unknown>[] = query.sort.map((s) => ({ [s.field]: { order: s.order } }));
  if (query.sort.length === 0) sort.push({ _score: { order: 'desc' } });
  sort.push({ key: { order: 'asc' } }, { db: { order: 'asc' } });
  return {
    query: { bool: { must, filter } },
    sort,
    size: query.size,
    track_scores: true,
    timeout: `${timeoutMs}ms`,
    ...(query.searchAfter ? { search_after: query.searchAfter } : {}),
  };
}
