import { parseSearchBody } from '../../../../features/search/body';
import { MAX_DSL_CLAUSES, MAX_DSL_DEPTH, validateDsl } from '../../../../features/search/dsl';
import {
  parseSearchQuery,
  SearchRequestError,
  searchBody,
  type SearchSettings,
} from '../../../../features/search/query';

const settings: SearchSettings = {
  cacheTtlMs: 30000,
  cache: { maxEntryBytes: 262144, maxTotalBytes: 33554432 },
  maxDocumentBytes: 1048576,
  maxQueryTerms: 64,
  maxFuzzyTerms: 8,
  maxConcurrentPerClient: 16,
  maxConcurrent: 64,
  defaultPageSize: 20,
  maxPageSize: 100,
  maxQueryLength: 1000,
  timeoutMs: 5000,
  refreshWindowMs: 1500,
};

const refusal = (query: unknown): string => {
  try {
    validateDsl(query, settings);
  } catch (err) {
    if (err instanceof SearchRequestError && err.status === 400) return err.message;
    throw err;
  }
  throw new Error(`accepted ${JSON.stringify(query)}`);
};

/** Nests `levels` bool clauses around a match. */
const nested = (levels: number): unknown => {
  let q: unknown = { match: { name: 'apple' } };
  for (let i = 0; i < levels; i++) q = { bool: { must: [q] } };
  return q;
};

describe('the restricted query DSL of POST /search', () => {
  it('accepts the whitelisted clauses and sorts their keys, so equal queries share a cache entry', () => {
    const a = validateDsl(
      {
        bool: {
          should: [
            { match_phrase: { name: 'red apple' } },
            { multi_match: { query: 'apple', fields: ['name', 'value^2'] } },
          ],
          must: [
            { match: { name: { query: 'apple', operator: 'and' } } },
            { query_string: { query: 'name:app*' } },
            { simple_query_string: { query: 'apple +red' } },
          ],
          filter: [
            { term: { type: 'hash' } },
            { terms: { db: [0, 1] } },
            { range: { ttl_ms: { gte: 10, lt: 100 } } },
            { exists: { field: 'value' } },
            { prefix: { key: 'fruit:' } },
          ],
          must_not: { wildcard: { key: 'fruit:1*' } },
          minimum_should_match: 1,
        },
      },
      settings,
    );
    const b = validateDsl(
      {
        bool: {
          minimum_should_match: 1,
          must_not: { wildcard: { key: 'fruit:1*' } },
          filter: [
            { term: { type: 'hash' } },
            { terms: { db: [0, 1] } },
            { range: { ttl_ms: { lt: 100, gte: 10 } } },
            { exists: { field: 'value' } },
            { prefix: { key: 'fruit:' } },
          ],
          must: [
            { match: { name: { operator: 'and', query: 'apple' } } },
            { query_string: { query: 'name:app*' } },
            { simple_query_string: { query: 'apple +red' } },
          ],
          should: [
            { match_phrase: { name: 'red apple' } },
            { multi_match: { fields: ['name', 'value^2'], query: 'apple' } },
          ],
        },
      },
      settings,
    );
    expect(JSON.stringify(a)).toBe(JSON.stringify(b));
    // query_string never gets to turn leading wildcards back on.
    expect((a.bool as { must: unknown[] }).must[1]).toEqual({
      query_string: {
        query: 'name:app*',
        allow_leading_wildcard: false,
        fuzzy_max_expansions: 10,
        fuzzy_prefix_length: 1,
        max_determinized_states: 2000,
      },
    });
  });

  it('refuses clauses off the whitelist and unknown keys, naming their path', () => {
    expect(refusal({ bool: { must: [{ match: { name: 'a' } }, { script: { script: 'true' } }] } })).toBe(
      'query.bool.must[1].script: not allowed',
    );
    expect(refusal({ more_like_this: { like: 'apple' } })).toBe('query.more_like_this: not allowed');
    expect(refusal({ bool: { filter: { nested: { path: 'x', query: { match_all: {} } } } } })).toBe(
      'query.bool.filter.nested: not allowed',
    );
    expect(refusal({ bool: { must: [], should_not: [] } })).toBe('query.bool.should_not: not allowed');
    expect(refusal({ match: { name: { query: 'a', analyzer: 'x' } } })).toBe('query.match.name.analyzer: not allowed');
    expect(refusal({ query_string: { query: 'a', allow_leading_wildcard: true } })).toBe(
      'query.query_string.allow_leading_wildcard: not allowed',
    );
    expect(refusal({ term: { name: 'a' }, match: { name: 'a' } })).toBe('query: must name exactly one clause (got 2)');
    expect(refusal({ term: { 'bad field!': 'a' } })).toBe('query.term.bad field!: not a field name');
  });

  it('refuses leading wildcards and long patterns, in pattern clauses and query strings alike', () => {
    expect(refusal({ bool: { must: [{ wildcard: { key: '*apple' } }] } })).toBe(
      'query.bool.must[0].wildcard.key: leading wildcards are not allowed: they scan every term of the index',
    );
    expect(refusal({ regexp: { key: { value: '.*apple' } } })).toBe(
      'query.regexp.key.value: leading wildcards are not allowed: they scan every term of the index',
    );
    expect(refusal({ prefix: { key: 'a'.repeat(101) } })).toBe(
      'query.prefix.key: patterns are limited to 100 characters (got 101)',
    );
    expect(refusal({ query_string: { query: 'name:?pple' } })).toMatch(
      /^query\.query_string\.query: leading wildcards/,
    );
    expect(refusal({ simple_query_string: { query: 'x'.repeat(1001) } })).toBe(
      'query.simple_query_string.query is 1001 characters, over the limit of 1000',
    );
  });

  it('limits nesting depth and the number of clauses', () => {
    expect(() => validateDsl(nested(MAX_DSL_DEPTH - 1), settings)).not.toThrow();
    expect(refusal(nested(MAX_DSL_DEPTH))).toBe(
      `query${'.bool.must[0]'.repeat(MAX_DSL_DEPTH)}: nested deeper than ${MAX_DSL_DEPTH} levels`,
    );
    const wide = { bool: { should: Array.from({ length: MAX_DSL_CLAUSES }, (_, i) => ({ term: { key: `k${i}` } })) } };
    expect(refusal(wide)).toBe(
      `query.bool.should[${MAX_DSL_CLAUSES - 1}]: more than ${MAX_DSL_CLAUSES} clauses in one query`,
    );
  });

  it('gives the other body fields the meaning and the checks of the GET parameters', () => {
    expect(
      parseSearchBody(
        { filter: { type: 'hash', db: 0 }, sort: ['key:desc'], size: 5, search_after: ['k', 0] },
        settings,
      ),
    ).toEqual({
      filters: [
        ['db', '0'],
        ['type', 'hash'],
      ],
      sort: [{ field: 'key', order: 'desc' }],
      size: 5,
      searchAfter: ['k', 0],
      q: undefined,
    });
    expect(() => parseSearchBody({ size: 101 }, settings)).toThrow('size 101 is over the maximum page size of 100');
    expect(() => parseSearchBody({ q: 'apple' }, settings)).toThrow(
      'q: unknown field (expected query, filter, sort, size, search_after)',
    );
    expect(() => parseSearchBody([], settings)).toThrow('the body must be a JSON object');
  });
});

describe('the cost of a search', () => {
  const qRefusal = (q: string): string => {
    try {
      parseSearchQuery({ q }, settings);
    } catch (err) {
      if (err instanceof SearchRequestError) return err.message;
      throw err;
    }
    return 'accepted';
  };

  it('bounds the terms and fuzzy terms of one search, over q and every clause of a body', () => {
    const words = (n: number, suffix = ''): string => Array.from({ length: n }, (_, i) => `w${i}${suffix}`).join(' ');
    expect(qRefusal(words(64))).toBe('accepted');
    expect(qRefusal(words(65))).toBe('q: more than 64 terms in one search (search.maxQueryTerms)');
    expect(qRefusal(words(8, '~'))).toBe('accepted');
    expect(qRefusal(words(9, '~2'))).toBe('q: more than 8 fuzzy terms in one search (search.maxFuzzyTerms)');
    expect(refusal({ match: { content: { query: words(9), fuzziness: 'AUTO' } } })).toBe(
      'query.match.content: more than 8 fuzzy terms in one search (search.maxFuzzyTerms)',
    );
    expect(
      refusal({ bool: { must: [{ match: { content: words(40) } }, { match_phrase: { content: words(30) } }] } }),
    ).toMatch(/more than 64 terms in one search/);
    expect(refusal({ match: { content: { query: 'a', fuzziness: 5 } } })).toBe(
      'query.match.content.fuzziness: must be one of AUTO, 0, 1, 2',
    );
  });

  it('caps what Elasticsearch may expand, in the body and in q alike', () => {
    expect(validateDsl({ match: { content: { query: 'aple', fuzziness: 'AUTO' } } }, settings)).toEqual({
      match: { content: { fuzziness: 'AUTO', query: 'aple', max_expansions: 10, prefix_length: 1 } },
    });
    expect(validateDsl({ regexp: { key: 'fr[a-z]+t' } }, settings)).toEqual({
      regexp: { key: { value: 'fr[a-z]+t', max_determinized_states: 2000 } },
    });
    const body = searchBody(parseSearchQuery({ q: 'aple~' }, settings), 5000) as {
      query: { bool: { must: { query_string: Record<string, unknown> }[] } };
    };
    expect(body.query.bool.must[0]!.query_string).toMatchObject({
      fuzzy_max_expansions: 10,
      fuzzy_prefix_length: 1,
      max_determinized_states: 2000,
      allow_leading_wildcard: false,
    });
  });

  it('applies one rule to every regular expression: q, a body query_string and a regexp clause', () => {
    for (const [pattern, why] of [
      ['.*secret', /leading wildcards/],
      ['(a+)+b', /nested repetitions/],
      ['a*b*c*d*e*f*g*h*i*j*k*', /more than 10 repetitions/],
      ['x'.repeat(101), /limited to 100 characters/],
    ] as const) {
      expect({ pattern, q: qRefusal(`key:/${pattern}/`) }).toEqual({ pattern, q: expect.stringMatching(why) });
      expect({ pattern, body: refusal({ query_string: { query: `key:/${pattern}/` } }) }).toEqual({
        pattern,
        body: expect.stringMatching(why),
      });
      expect({ pattern, clause: refusal({ regexp: { key: pattern } }) }).toEqual({
        pattern,
        clause: expect.stringMatching(why),
      });
    }
    expect(qRefusal('key:/fr[a-z]+t/')).toBe('accepted');
  });
});
