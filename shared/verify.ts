import { isDeepStrictEqual } from 'node:util';
import type { Client } from '@elastic/elasticsearch';
import { docKey, scanIndex } from './es-scan';
import { DocumentRejectedError } from './errors';
import { readKeyStates } from './key-state';
import type { Progress } from './progress';
import { toOperation, type DocOperation } from './mapping/document';
import type { KeyRouter } from './mapping/router';
import { isOwnKey } from './queue';
import { existsMany, type SourceRedis } from './redis';

export interface VerifyOptions {
  databases: readonly number[];
  patterns: readonly string[];
  prefix: string;
  scanCount: number;
  /** Mismatches are checked once more after this pause, so changes still in flight are not reported. */
  settleMs: number;
  progress?: Progress;
}

export interface VerifyReport {
  checked: number;
  missing: string[];
  stale: string[];
  extra: string[];
}

interface KeyRef {
  db: number;
  key: string;
}

/** A document found by scanning an index. */
interface DocRef extends KeyRef {
  index: string;
  id: string;
}

type Verdict = 'ok' | 'missing' | 'stale' | 'extra';

/**
 * Compares Redis with Elasticsearch under the configured rules: every key against its
 * document (missing, stale), then every document against its key (extra: the key is gone or
 * maps elsewhere). Works page by page, so memory grows with the mismatches, not the keyspace.
 */
export interface VerifyDeps {
  es: Client;
  source: SourceRedis;
  router: KeyRouter;
}

export async function verify(deps: VerifyDeps, opts: VerifyOptions): Promise<VerifyReport> {
  const suspects = new Map<string, KeyRef>();
  const orphans = new Map<string, DocRef>();
  let checked = 0;
  if (opts.progress) {
    let total = 0;
    for (const db of opts.databases) for (const node of await deps.source.masters(db)) total += await node.client.dbsize();
    opts.progress.setTotal(total);
  }
  for (const db of opts.databases) {
    // Every master: in a Redis Cluster each holds its own slots' keys.
    for (const node of await deps.source.masters(db)) {
      for (const pattern of opts.patterns) {
        let cursor = '0';
        do {
          const [next, page] = await node.client.scan(cursor, 'MATCH', pattern, 'COUNT', opts.scanCount);
          cursor = next;
          const keys = page.filter((k) => !isOwnKey(opts.prefix, k));
          const verdicts = await checkKeys(deps, db, keys);
          checked += keys.length;
          opts.progress?.increment(page.length);
          keys.forEach((key, i) => {
            if (verdicts[i] !== 'ok') suspects.set(refId({ db, key }), { db, key });
          });
        } while (cursor !== '0');
      }
    }
  }
  const synced = new Set(opts.databases);
  for (const index of deps.router.indices()) {
    for await (const page of scanIndex(deps.es, index)) {
      const refs: DocRef[] = [];
      for (const doc of page) {
        const ref = docKey(doc.source);
        if (ref && synced.has(ref.db)) refs.push({ ...ref, index, id: doc.id });
      }
      const verdicts = await checkDocs(deps, refs, false);
      refs.forEach((ref, i) => {
        if (verdicts[i] === 'extra') orphans.set(`${ref.index}\u0000${ref.id}`, ref);
      });
    }
  }
  opts.progress?.stop();

  if (suspects.size + orphans.size > 0 && opts.settleMs > 0) await new Promise((r) => setTimeout(r, opts.settleMs));
  const report: VerifyReport = { checked, missing: [], stale: [], extra: [] };
  const name = (r: KeyRef): string => reportName(r, opts.databases);
  for (const [db, keys] of groupByDb([...suspects.values()])) {
    for (let i = 0; i < keys.length; i += 500) {
      const slice = keys.slice(i, i + 500);
      const verdicts = await checkKeys(deps, db, slice);
      slice.forEach((key, j) => {
        if (verdicts[j] !== 'ok') report[verdicts[j] as Exclude<Verdict, 'ok'>].push(name({ db, key }));
      });
    }
  }
  const docs = [...orphans.values()];
  for (let i = 0; i < docs.length; i += 500) {
    const slice = docs.slice(i, i + 500);
    const verdicts = await checkDocs(deps, slice, true);
    slice.forEach((ref, j) => {
      if (verdicts[j] === 'extra' && !report.extra.includes(name(ref))) report.extra.push(name(ref));
    });
  }
  return report;
}

/** How a key appears in a report: `key`, or `db:key` when several databases are synced. */
function reportName(r: KeyRef, databases: readonly number[]): string {
  return databases.length > 1 ? `${r.db}:${r.key}` : r.key;
}

/** Every key a report names (missing, stale, extra), by database: what a repair enqueues. */
export function reportKeys(report: VerifyReport, databases: readonly number[]): Map<number, string[]> {
  const byDb = new Map<number, Set<string>>();
  for (const name of [...report.missing, ...report.stale, ...report.extra]) {
    let db = databases[0];
    let key = name;
    if (databases.length > 1) {
      const colon = name.indexOf(':');
      db = Number(name.slice(0, colon));
      key = name.slice(colon + 1);
    }
    const keys = byDb.get(db) ?? new Set<string>();
    keys.add(key);
    byDb.set(db, keys);
  }
  return new Map([...byDb].map(([db, keys]) => [db, [...keys]]));
}

export function formatReport(r: VerifyReport): string {
  return `checked ${r.checked}, missing ${r.missing.length}, stale ${r.stale.length}, extra ${r.extra.length}`;
}

export function inSync(r: VerifyReport): boolean {
  return r.missing.length + r.stale.length + r.extra.length === 0;
}

/**
 * For each key: the document it should have (by its current state) against the one
 * Elasticsearch holds (realtime GET, so unrefreshed writes count).
 */
async function checkKeys(deps: VerifyDeps, db: number, keys: readonly string[]): Promise<Verdict[]> {
  if (keys.length === 0) return [];
  const states = await readKeyStates(deps.source.db(db), keys);
  const expected: (DocOperation | undefined | 'unbuildable')[] = keys.map((key, i) => {
    const route = deps.router.route(db, key);
    if (!route) return undefined;
    try {
      return toOperation(route, route.shape, db, key, states[i]);
    } catch (err) {
      if (err instanceof DocumentRejectedError) return 'unbuildable';
      throw err;
    }
  });
  const lookups = expected.map((e) => (e && e !== 'unbuildable' ? { _index: e.index, _id: e.id } : undefined));
  const wanted = lookups.filter((l): l is { _index: string; _id: string } => l !== undefined);
  const found = wanted.length > 0 ? (await deps.es.mget<Record<string, unknown>>({ docs: wanted })).docs : [];
  let f = 0;
  return expected.map((e): Verdict => {
    if (e === undefined) return 'ok';
    if (e === 'unbuildable') return 'missing';
    const got = found[f++] as { found?: boolean; _source?: Record<string, unknown> };
    if (e.op === 'delete') return got.found ? 'extra' : 'ok';
    if (!got.found || !got._source) return 'missing';
    return sameDocument(e.doc, got._source) ? 'ok' : 'stale';
  });
}

/**
 * For each document: is it one the rules would keep? `extra` when its key is gone or now maps
 * to another index or id. With `realtime`, a document that is itself gone by now is fine.
 */
async function checkDocs(deps: VerifyDeps, refs: readonly DocRef[], realtime: boolean): Promise<Verdict[]> {
  if (refs.length === 0) return [];
  const verdicts: Verdict[] = new Array(refs.length).fill('ok');
  for (const [db, idx] of groupIndexesByDb(refs)) {
    const exists = await existsMany(
      deps.source.db(db),
      idx.map((i) => refs[i].key),
    );
    idx.forEach((i, j) => {
      const route = deps.router.route(db, refs[i].key);
      const stillMapped = exists[j] && route?.index === refs[i].index && route.id === refs[i].id;
      if (!stillMapped) verdicts[i] = 'extra';
    });
  }
  if (realtime) {
    const flagged = refs.map((r, i) => ({ r, i })).filter(({ i }) => verdicts[i] === 'extra');
    if (flagged.length > 0) {
      const got = await deps.es.mget({ docs: flagged.map(({ r }) => ({ _index: r.index, _id: r.id, _source: false })) });
      got.docs.forEach((d, j) => {
        if (!(d as { found?: boolean }).found) verdicts[flagged[j].i] = 'ok';
      });
    }
  }
  return verdicts;
}

function groupIndexesByDb(refs: readonly KeyRef[]): Map<number, number[]> {
  const out = new Map<number, number[]>();
  refs.forEach((r, i) => {
    const list = out.get(r.db);
    if (list) list.push(i);
    else out.set(r.db, [i]);
  });
  return out;
}

/** ttl_ms shrinks every millisecond; only whether a TTL is set is compared. */
function sameDocument(expected: Record<string, unknown>, actual: Record<string, unknown>): boolean {
  const strip = (d: Record<string, unknown>): Record<string, unknown> => {
    const { ttl_ms, ...rest } = d;
    return { ...rest, hasTtl: ttl_ms !== undefined };
  };
  return isDeepStrictEqual(JSON.parse(JSON.stringify(strip(expected))), strip(actual));
}

function groupByDb(refs: readonly KeyRef[]): Map<number, string[]> {
  const out = new Map<number, string[]>();
  for (const r of refs) {
    const list = out.get(r.db) ?? [];
    list.push(r.key);
    out.set(r.db, list);
  }
  return out;
}

function refId(r: KeyRef): string {
  return `${r.db}\u0000${r.key}`;
}
