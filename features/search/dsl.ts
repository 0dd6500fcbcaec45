import {
  FUZZY_MAX_EXPANSIONS,
  FUZZY_PREFIX_LENGTH,
  MAX_DETERMINIZED_STATES,
  MAX_REGEX_LENGTH,
  QUERY_STRING_CAPS,
  QueryBudget,
  SearchRequestError,
  checkQueryString,
  checkRegexp,
  type SearchSettings,
} from './query';

/** How deep `bool` clauses may nest, and how many clauses one query may hold in all. */
export const MAX_DSL_DEPTH = 5;
export const MAX_DSL_CLAUSES = 50;
/** Longest prefix, wildcard or regexp pattern accepted, and the most values a `terms` clause may list. */
export const MAX_PATTERN_LENGTH = MAX_REGEX_LENGTH;
export const MAX_TERMS = 100;

type Json = string | number | boolean | null | Json[] | { [key: string]: Json };
type Obj = Record<string, Json>;

const FIELD = /^[A-Za-z0-9_@][A-Za-z0-9_.@-]*(\^\d+(\.\d+)?)?$/;
const BOOL_OCCURRENCES = ['must', 'should', 'filter', 'must_not'] as const;
const MATCH_TYPES = ['best_fields', 'most_fields', 'cross_fields', 'phrase', 'phrase_prefix', 'bool_prefix'];

const refuse = (path: string, why: string): never => {
  throw new SearchRequestError(400, `${path}: ${why}`);
};
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const isScalar = (v: unknown): v is string | number | boolean => ['string', 'number', 'boolean'].includes(typeof v);

/**
 * Validates the `query` of `POST /search/:index` against a whitelist of Elasticsearch clauses
 * and returns it with its keys sorted, so equal queries share a cache entry. Anything not on
 * the list (script, more_like_this, nested, unknown keys) is refused with its path.
 */
export function validateDsl(query: unknown, settings: SearchSettings, path = 'query'): Obj {
  const walker = new DslWalker(settings);
  return walker.clause(query, path, 1);
}

class DslWalker {
  private clauses = 0;
  private readonly budget: QueryBudget;
  constructor(private readonly settings: SearchSettings) {
    this.budget = new QueryBudget(settings);
  }

  /** A full-text value: its words count against the request's budget, all of them as fuzzy when the clause is. */
  private text(path: string, fuzzy = false): Check {
    return (v, p) => {
      const s = typeof v === 'string' ? v : String(scalar(v, p));
      this.budget.addText(s, path, fuzzy);
      return typeof v === 'string' ? v : scalar(v, p);
    };
  }

  clause(value: unknown, path: string, depth: number): Obj {
    if (!isObj(value)) return refuse(path, 'must be an object naming one clause');
    const names = Object.keys(value);
    const [type] = names;
    if (type === undefined || names.length !== 1)
      return refuse(path, `must name exactly one clause (got ${names.length})`);
    if (depth > MAX_DSL_DEPTH) return refuse(path, `nested deeper than ${MAX_DSL_DEPTH} levels`);
    if (++this.clauses > MAX_DSL_CLAUSES) return refuse(path, `more than ${MAX_DSL_CLAUSES} clauses in one query`);
    const body = value[type];
    const at = `${path}.${type}`;
    switch (type) {
      case 'bool':
        return { bool: this.bool(body, at, depth) };
      case 'match':
        return { match: this.match(body, at) };
      case 'match_phrase':
        return {
          match_phrase: fieldClause(body, at, 'query', (v, p) => str(this.text(at)(v, p), p), { slop: numberOpt }),
        };
      case 'term':
        return { term: fieldClause(body, at, 'value', (v, p) => scalar(v, p), { case_insensitive: boolOpt }) };
      case 'prefix':
        return {
          prefix: fieldClause(body, at, 'value', (v, p) => pattern(v, p, false), { case_insensitive: boolOpt }),
        };
      case 'wildcard':
        return {
          wildcard: fieldClause(body, at, 'value', (v, p) => pattern(v, p, true), { case_insensitive: boolOpt }),
        };
      case 'regexp':
        return {
          regexp: capped(
            fieldClause(body, at, 'value', (v, p) => regexpPattern(v, p), { case_insensitive: boolOpt }),
            { max_determinized_states: MAX_DETERMINIZED_STATES },
          ),
        };
      case 'terms':
        return { terms: terms(body, at) };
      case 'range':
        return { range: range(body, at) };
      case 'exists':
        return { exists: keys(body, at, { field: (v, p) => field(v, p) }, ['field']) };
      case 'multi_match':
        return {
          multi_match: keys(
            body,
            at,
            {
              query: (v, p) => str(this.text(at)(v, p), p),
              fields: fields,
              type: oneOf(MATCH_TYPES),
              operator: oneOf(['and', 'or', 'AND', 'OR']),
              boost: numberOpt,
            },
            ['query'],
          ),
        };
      case 'query_string':
        return { query_string: { ...this.queryString(body, at), ...QUERY_STRING_CAPS } };
      case 'simple_query_string':
        return {
          simple_query_string: {
            ...this.queryString(body, at),
            fuzzy_max_expansions: FUZZY_MAX_EXPANSIONS,
            fuzzy_prefix_length: FUZZY_PREFIX_LENGTH,
          },
        };
      default:
        return refuse(at, 'not allowed');
    }
  }

  /** A fuzzy match expands every word of its query: they all count as fuzzy, and the expansion is capped. */
  private match(body: unknown, path: string): Obj {
    const { name, at, value } = oneField(body, path);
    if (!isObj(value)) return { [name]: this.text(at)(value, at) };
    const fuzzy = value.fuzziness !== undefined && value.fuzziness !== 0 && value.fuzziness !== '0';
    const checked = keys(
      value,
      at,
      {
        query: this.text(at, fuzzy),
        boost: numberOpt,
        operator: oneOf(['and', 'or', 'AND', 'OR']),
        fuzziness: fuzzinessOpt,
        minimum_should_match: scalarOpt,
      },
      ['query'],
    );
    return {
      [name]: fuzzy
        ? { ...checked, max_expansions: FUZZY_MAX_EXPANSIONS, prefix_length: FUZZY_PREFIX_LENGTH }
        : checked,
    };
  }

  private bool(body: unknown, path: string, depth: number): Obj {
    if (!isObj(body)) return refuse(path, 'must be an object');
    const out: Obj = {};
    for (const name of Object.keys(body).sort()) {
      const v = body[name];
      if ((BOOL_OCCURRENCES as readonly string[]).includes(name)) {
        out[name] = Array.isArray(v)
          ? v.map((c, i) => this.clause(c, `${path}.${name}[${i}]`, depth + 1))
          : this.clause(v, `${path}.${name}`, depth + 1);
      } else if (name === 'minimum_should_match' || name === 'boost') {
        out[name] = scalar(v, `${path}.${name}`);
      } else {
        refuse(`${path}.${name}`, 'not allowed');
      }
    }
    return out;
  }

  private queryString(body: unknown, path: string): Obj {
    return keys(
      body,
      path,
      {
        query: (v, p) => {
          const q = str(v, p);
          checkQueryString(q, this.settings, p, this.budget);
          return q;
        },
        fields,
        default_field: (v, p) => field(v, p),
        default_operator: oneOf(['and', 'or', 'AND', 'OR']),
        boost: numberOpt,
      },
      ['query'],
    );
  }
}

type Check = (value: unknown, path: string) => Json;

function keys(body: unknown, path: string, allowed: Record<string, Check>, required: string[]): Obj {
  if (!isObj(body)) return refuse(path, 'must be an object');
  for (const name of required) if (!(name in body)) refuse(`${path}.${name}`, 'is required');
  const out: Obj = {};
  for (const name of Object.keys(body).sort()) {
    const check = allowed[name];
    if (!check) return refuse(`${path}.${name}`, 'not allowed');
    out[name] = check(body[name], `${path}.${name}`);
  }
  return out;
}

/** A clause naming exactly one (valid) field: its name, path and value. */
function oneField(body: unknown, path: string): { name: string; at: string; value: unknown } {
  if (!isObj(body)) return refuse(path, 'must be an object naming one field');
  const names = Object.keys(body);
  const [name] = names;
  if (name === undefined || names.length !== 1)
    return refuse(path, `must name exactly one field (got ${names.length})`);
  const at = `${path}.${name}`;
  field(name, at);
  return { name, at, value: body[name] };
}

/** `{ field: value }` or `{ field: { <main>: value, ...options } }`, exactly one field. */
function fieldClause(body: unknown, path: string, main: string, check: Check, options: Record<string, Check>): Obj {
  const { name, at, value: v } = oneField(body, path);
  return { [name]: isObj(v) ? keys(v, at, { [main]: check, boost: numberOpt, ...options }, [main]) : check(v, at) };
}

function terms(body: unknown, path: string): Obj {
  if (!isObj(body)) return refuse(path, 'must be an object naming one field');
  const names = Object.keys(body).filter((n) => n !== 'boost');
  if (names.length !== 1) return refuse(path, `must name exactly one field (got ${names.length})`);
  const out: Obj = {};
  for (const name of Object.keys(body).sort()) {
    const at = `${path}.${name}`;
    const v = body[name];
    if (name === 'boost') {
      out[name] = numberOpt(v, at);
      continue;
    }
    field(name, at);
    if (!Array.isArray(v) || v.length === 0) refuse(at, 'must be a non-empty array of values');
    if ((v as Json[]).length > MAX_TERMS) refuse(at, `more than ${MAX_TERMS} values`);
    out[name] = (v as Json[]).map((t, i) => scalar(t, `${at}[${i}]`));
  }
  return out;
}

function range(body: unknown, path: string): Obj {
  const { name, at, value } = oneField(body, path);
  const bounds = keys(
    value,
    at,
    { gt: scalarOpt, gte: scalarOpt, lt: scalarOpt, lte: scalarOpt, format: (v, p) => str(v, p), boost: numberOpt },
    [],
  );
  if (!['gt', 'gte', 'lt', 'lte'].some((b) => b in bounds)) refuse(at, 'needs one of gt, gte, lt, lte');
  return { [name]: bounds };
}

function scalar(v: unknown, path: string): string | number | boolean {
  if (!isScalar(v)) return refuse(path, 'must be a string, number or boolean');
  return v;
}
const scalarOpt: Check = (v, p) => scalar(v, p);
function str(v: unknown, path: string): string {
  if (typeof v !== 'string') return refuse(path, 'must be a string');
  return v;
}
/** Edit distances Elasticsearch allows: AUTO, or 0 to 2 as a number or a string. */
const fuzzinessOpt: Check = (v, p) =>
  ['AUTO', '0', '1', '2', 0, 1, 2].includes(v as string | number)
    ? (v as string | number)
    : refuse(p, 'must be one of AUTO, 0, 1, 2');
const numberOpt: Check = (v, p) => (typeof v === 'number' && Number.isFinite(v) ? v : refuse(p, 'must be a number'));
const boolOpt: Check = (v, p) => (typeof v === 'boolean' ? v : refuse(p, 'must be true or false'));
const oneOf =
  (allowed: string[]): Check =>
  (v, p) =>
    typeof v === 'string' && allowed.includes(v) ? v : refuse(p, `must be one of ${allowed.join(', ')}`);
function field(v: unknown, path: string): string {
  if (typeof v !== 'string' || !FIELD.test(v)) return refuse(path, 'not a field name');
  return v;
}
const fields: Check = (v, p) => {
  if (!Array.isArray(v) || v.length === 0 || v.length > MAX_TERMS)
    return refuse(p, `must be an array of 1 to ${MAX_TERMS} field names`);
  return v.map((f, i) => field(f, `${p}[${i}]`));
};

/** A regexp clause's pattern: the rules of every regular expression (query.ts). */
function regexpPattern(v: unknown, path: string): string {
  const s = str(v, path);
  checkRegexp(s, path);
  return s;
}

/** A field clause with caps added to its options (the short form `{ field: value }` becomes the long one). */
function capped(clause: Obj, caps: Obj): Obj {
  const [name] = Object.keys(clause);
  // No field, nothing to cap (callers pass one-field clauses); an Obj's values are never undefined.
  const v = name === undefined ? undefined : clause[name];
  if (name === undefined || v === undefined) return clause;
  return { [name]: { ...(isObj(v) ? v : { value: v }), ...caps } };
}

/** Prefix and wildcard patterns: bounded in length; a wildcard may not start with a wildcard. */
function pattern(v: unknown, path: string, wildcards: boolean): string {
  const s = str(v, path);
  if (s.length === 0) refuse(path, 'must not be empty');
  if (s.length > MAX_PATTERN_LENGTH)
    refuse(path, `patterns are limited to ${MAX_PATTERN_LENGTH} characters (got ${s.length})`);
  // A leading * or ? (or `.` in a regexp) makes Elasticsearch walk every term of the index.
  if (wildcards && /^[*?.]/.test(s))
    refuse(path, 'leading wildcards are not allowed: they scan every term of the index');
  return s;
}
