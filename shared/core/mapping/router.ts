import { isAbsolute, resolve } from 'node:path';
import type { AppConfig, RuleConfig } from '../../platform/config/schema';
import { ConfigError } from '../../platform/errors';
import { documentId, type DocumentShape, type TransformFn } from './document';
import { globToRegExp } from './glob';
import { isCanaryKey, type CanarySettings } from '../canary';

/** Where a key's document lives and how it is shaped. */
export interface Route {
  index: string;
  id: string;
  shape: DocumentShape;
}

interface CompiledRule {
  pattern: RegExp;
  databases?: ReadonlySet<number>;
  skip: boolean;
  index: string;
  idTemplate: string;
  shape: DocumentShape;
}

const DEFAULT_SHAPE: DocumentShape = { json: 'auto', searchText: true };
/** A heartbeat's value is a timestamp: kept as the text it is, nothing to search in it. */
const CANARY_SHAPE: DocumentShape = { json: false, searchText: false };

/**
 * Decides, from the key name alone, which index and `_id` a key maps to. Routing never looks
 * at the value, so a deleted key maps to the same document it was indexed as.
 */
export class KeyRouter {
  private constructor(
    private readonly rules: readonly CompiledRule[],
    private readonly fallback: CompiledRule | undefined,
    private readonly canary: CanarySettings | undefined,
  ) {}

  static fromConfig(
    mapping: AppConfig['mapping'],
    baseDir: string = process.cwd(),
    databases: readonly number[] = [0],
    /** The freshness canary when it is on: its heartbeat keys go to its own index, before any rule. */
    canary?: CanarySettings,
  ): KeyRouter {
    const rules = mapping.rules.map((rule, i) => compileRule(rule, i, mapping.defaultIndex, baseDir));
    const fallback: CompiledRule | undefined =
      mapping.unmatched === 'skip'
        ? undefined
        : {
            pattern: /^/,
            skip: false,
            index: mapping.defaultIndex,
            // With several databases the default id carries the db, so equal names cannot collide.
            idTemplate: databases.length > 1 ? '{db}:{key}' : '{key}',
            shape: DEFAULT_SHAPE,
          };
    checkIdsAreUnique(rules, databases);
    return new KeyRouter(rules, fallback, canary);
  }

  /** The route for a key, or undefined when the key is not synced. */
  route(db: number, key: string): Route | undefined {
    if (this.canary && isCanaryKey(this.canary, key)) return { index: this.canary.index, id: key, shape: CANARY_SHAPE };
    for (const rule of this.rules) {
      if (rule.databases && !rule.databases.has(db)) continue;
      const m = rule.pattern.exec(key);
      if (!m) continue;
      if (rule.skip) return undefined;
      return { index: rule.index, id: documentId(expandTemplate(rule.idTemplate, key, db, m)), shape: rule.shape };
    }
    const fallback = this.fallback;
    if (!fallback) return undefined;
    // The fallback matched no pattern: its template has no groups to fill (they expand to '').
    return {
      index: fallback.index,
      id: documentId(expandTemplate(fallback.idTemplate, key, db, null)),
      shape: fallback.shape,
    };
  }

  /** Whether the rules sync this key at all: route() without building the id, for checks on every key of a job. */
  syncs(db: number, key: string): boolean {
    if (isCanaryKey(this.canary, key)) return true;
    for (const rule of this.rules) {
      if (rule.databases && !rule.databases.has(db)) continue;
      if (rule.pattern.test(key)) return !rule.skip;
    }
    return this.fallback !== undefined;
  }

  /**
   * The same rules writing to other indices (index → replacement): how a rebuild writes into,
   * and verifies, the generation it builds while the rules still name the alias.
   */
  retargeted(targets: ReadonlyMap<string, string>): KeyRouter {
    const move = (r: CompiledRule): CompiledRule => ({ ...r, index: targets.get(r.index) ?? r.index });
    const canary = this.canary && { ...this.canary, index: targets.get(this.canary.index) ?? this.canary.index };
    return new KeyRouter(this.rules.map(move), this.fallback && move(this.fallback), canary);
  }

  /** A freshness canary's heartbeat key (its own index; verify and status leave it out). */
  isHeartbeat(key: string): boolean {
    return isCanaryKey(this.canary, key);
  }

  /** The canary's index, when the canary is on. */
  heartbeatIndex(): string | undefined {
    return this.canary?.index;
  }

  /** Every index this router can write to. */
  indices(): string[] {
    const all = new Set<string>();
    for (const r of this.rules) if (!r.skip) all.add(r.index);
    if (this.fallback) all.add(this.fallback.index);
    if (this.canary) all.add(this.canary.index);
    return [...all];
  }
}

function compileRule(rule: RuleConfig, i: number, defaultIndex: string, baseDir: string): CompiledRule {
  const field = `mapping.rules[${i}]`;
  let pattern: RegExp;
  if (rule.regex !== undefined) {
    try {
      pattern = new RegExp(rule.regex, 's');
    } catch (err) {
      throw new ConfigError(`${field}.regex: ${(err as Error).message}`, [
        { field: `${field}.regex`, reason: (err as Error).message },
      ]);
    }
  } else {
    pattern = globToRegExp(rule.match ?? '*');
  }
  const idTemplate = rule.id ?? '{key}';
  for (const name of idTemplate.matchAll(/\{([^}]+)\}/g)) {
    const ref = name[1] ?? ''; // the group is not optional: a match always has it
    if (ref === 'key' || ref === 'db' || /^\d+$/.test(ref)) continue;
    if (rule.regex === undefined || !new RegExp(`\\(\\?<${ref}>`).test(rule.regex)) {
      const reason = `id template refers to {${ref}}, which is not {key}, {db}, a group number or a named group of the regex`;
      throw new ConfigError(`${field}.id: ${reason}`, [{ field: `${field}.id`, reason }]);
    }
  }
  return {
    pattern,
    databases: rule.databases ? new Set(rule.databases) : undefined,
    skip: rule.skip,
    index: rule.index ?? defaultIndex,
    idTemplate,
    shape: {
      json: rule.json,
      keep: rule.fields?.keep,
      rename: rule.fields?.rename,
      coerce: rule.coerce,
      transform: rule.transform ? loadTransform(rule.transform, `${field}.transform`, baseDir) : undefined,
    },
  };
}

function expandTemplate(template: string, key: string, db: number, m: RegExpExecArray | null): string {
  if (template === '{key}') return key;
  return template.replace(/\{([^}]+)\}/g, (_, ref: string) => {
    if (ref === 'key') return key;
    if (ref === 'db') return String(db);
    if (/^\d+$/.test(ref)) return m?.[Number(ref)] ?? '';
    return m?.groups?.[ref] ?? '';
  });
}

/** Keys of different databases would overwrite each other's documents if their ids ignore the db. */
function checkIdsAreUnique(rules: readonly CompiledRule[], databases: readonly number[]): void {
  if (databases.length < 2) return;
  const offenders = rules
    .map((r, i) => ({ r, field: `mapping.rules[${i}].id` }))
    .filter(({ r }) => !r.skip && !r.idTemplate.includes('{db}') && (!r.databases || r.databases.size > 1));
  if (offenders.length === 0) return;
  const reason =
    'several databases are synced (redis.databases) but this id does not contain {db}: keys with the same name in two databases would share a document. Add {db} to the id template, restrict the rule with `databases: [n]`, or add a rule per database';
  throw new ConfigError(
    offenders.map((o) => `${o.field}: ${reason}`).join('\n'),
    offenders.map((o) => ({ field: o.field, reason })),
  );
}

function loadTransform(path: string, field: string, baseDir: string): TransformFn {
  const full = isAbsolute(path) ? path : resolve(baseDir, path);
  let mod: unknown;
  try {
    // A user's transform module, named in the config at run time: only require() can load a path
    // known at run time synchronously (the router is built synchronously) in this CommonJS build.
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- see above
    mod = require(full);
  } catch (err) {
    throw new ConfigError(`${field}: cannot load ${full}: ${(err as Error).message}`, [
      { field, reason: (err as Error).message },
    ]);
  }
  // A module may export anything, null and primitives included.
  const exported = mod as { transform?: unknown; default?: unknown } | null | undefined;
  const candidates = [mod, exported?.transform, exported?.default];
  const fn = candidates.find((c): c is TransformFn => typeof c === 'function');
  if (!fn) {
    const reason = `${full} must export a function (module.exports = fn, exports.transform or export default)`;
    throw new ConfigError(`${field}: ${reason}`, [{ field, reason }]);
  }
  return fn;
}
