import { isDeepStrictEqual } from 'node:util';
import { keyFromBytes } from '../../../shared/core/bytes';
import { docKey } from '../../../shared/sink/doc-key';
import type { Sink } from '../../../shared/sink/port';
import { DocumentRejectedError } from '../../../shared/platform/errors';
import { existsMany, readKeyStates, type KeyState } from '../../../shared/core/key-state';
import type { Progress } from '../../../shared/platform/progress';
import { toOperation, type DocOperation, type DocumentShape } from '../../../shared/core/mapping/document';
import type { KeyRouter, Route } from '../../../shared/core/mapping/router';
import { compareDocument } from './doc-compare';
import { readRaw } from './raw-read';
import { isOwnKey } from '../../../shared/core/queue';
import { countKeys, type SourceRedis } from '../../../shared/platform/redis';
import { sleep } from '../../../shared/platform/sleep';

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
  /** Keys whose document is a stub that says why the value could not be indexed (not out of sync). */
  refused: string[];
  /** Why each stale or refused key was reported, by its report name. */
  why: Record<string, string>;
}

interface KeyRef {
  db: number;
  /** Escaped (shared/core/bytes.ts): what the router and reports use. */
  key: string;
}

/** A key as scanned: its name and the exact bytes verify reads it by. */
interface ScannedKey extends KeyRef {
  bytes: Buffer;
}

/** A document found by scanning an index. */
interface DocRef extends KeyRef {
  index: string;
  id: string;
}

type Verdict = 'ok' | 'missing' | 'stale' | 'extra' | 'refused';

interface Check {
  verdict: Verdict;
  why?: string;
}

/**
 * Compares Redis with Elasticsearch under the configured rules: every key against its
 * document (missing, stale), then every document against its key (extra: the key is gone or
 * maps elsewhere). Works page by page, so memory grows with the mismatches, not the keyspace.
 */
export interface VerifyDeps {
  sink: Sink;
  source: SourceRedis;
  router: KeyRouter;
}

export async function verify(deps: VerifyDeps, opts: VerifyOptions): Promise<VerifyReport> {
  const suspects = new Map<string, ScannedKey>();
  const orphans = new Map<string, DocRef>();
  let checked = 0;
  if (opts.progress) opts.progress.setTotal(await countKeys(deps.source, opts.databases));
  for (const db of opts.databases) {
    // Every master: in a Redis Cluster each holds its own slots' keys.
    for (const node of await deps.source.masters(db)) {
      for (const pattern of opts.patterns) {
        let cursor = '0';
        do {
          // Buffers: a key that is not UTF-8 must be read by its own bytes, not a lossy name.
          const [next, page] = await node.client.scanBuffer(cursor, 'MATCH', pattern, 'COUNT', opts.scanCount);
          cursor = next.toString('latin1');
          const keys = page
            .map((bytes) => ({ db, key: keyFromBytes(bytes), bytes }))
            .filter((k) => !isOwnKey(opts.prefix, k.key) && !deps.router.isHeartbeat(k.key));
          const checks = await checkKeys(deps, db, keys);
          checked += keys.length;
          opts.progress?.increment(page.length);
          keys.forEach((k, i) => {
            // One check per key; a missing one is treated as suspect and so checked again below.
            if (checks[i]?.verdict !== 'ok') suspects.set(refId(k), k);
          });
        } while (cursor !== '0');
      }
    }
  }
  const synced = new Set(opts.databases);
  // The canary's heartbeats change every few seconds by design: not the user's data.
  for (const index of deps.router.indices().filter((i) => i !== deps.router.heartbeatIndex())) {
    for await (const page of deps.sink.scan(index)) {
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

  if (suspects.size + orphans.size > 0 && opts.settleMs > 0) await sleep(opts.settleMs);
  const report: VerifyReport = { checked, missing: [], stale: [], extra: [], refused: [], why: {} };
  const name = (r: KeyRef): string => reportName(r, opts.databases);
  for (const [db, keys] of groupByDb([...suspects.values()])) {
    for (let i = 0; i < keys.length; i += 500) {
      const slice = keys.slice(i, i + 500);
      const checks = await checkKeys(deps, db, slice);
      slice.forEach((k, j) => {
        const check = checks[j];
        if (check === undefined) throw new Error(`verify: no check for key ${j} of ${slice.length}`); // checkKeys answers one per key
        const { verdict, why } = check;
        if (verdict === 'ok') return;
        report[verdict].push(name(k));
        if (why) report.why[name(k)] = why;
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
  const [only] = databases;
  for (const name of [...report.missing, ...report.stale, ...report.extra]) {
    // With one database (the usual case) names carry no `db:` prefix; a report only exists for
    // a configuration, whose redis.databases is never empty, so `only` is set then.
    let db = only ?? 0;
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
  const refused = r.refused.length > 0 ? `, refused ${r.refused.length}` : '';
  return `checked ${r.checked}, missing ${r.missing.length}, stale ${r.stale.length}, extra ${r.extra.length}${refused}`;
}

export function inSync(r: VerifyReport): boolean {
  return r.missing.length + r.stale.length + r.extra.length === 0;
}

/**
 * For each key: what Redis holds, read by verify itself as bytes (raw-read.ts), against the
 * document Elasticsearch holds (realtime GET, so unrefreshed writes count), decoded back to
 * bytes (doc-compare.ts). Only a rule that reshapes documents (keep, rename, coerce, a
 * transform) is checked against what the rule builds, since its document is no longer an
 * image of the value.
 */
async function checkKeys(deps: VerifyDeps, db: number, keys: readonly ScannedKey[]): Promise<Check[]> {
  if (keys.length === 0) return [];
  const raws = await readRaw(
    deps.source.db(db),
    keys.map((k) => k.bytes),
  );
  const routes = keys.map((k) => deps.router.route(db, k.key));
  const shaped = keys.flatMap((k, i) => {
    const route = routes[i];
    return route && reshapes(route.shape) ? [{ i, key: k.key }] : [];
  });
  const states =
    shaped.length > 0
      ? await readKeyStates(
          deps.source.db(db),
          shaped.map((s) => s.key),
        )
      : [];
  const stateOf = new Map(shaped.map((s, j) => [s.i, states[j]]));
  const asked = routes.flatMap((route, i) => (route ? [{ i, route }] : []));
  const found = await getDocuments(
    deps.sink,
    asked.map(({ route }) => route),
  );
  const docOf = new Map(asked.map(({ i }, j) => [i, found[j]]));
  return keys.map((k, i): Check => {
    const route = routes[i];
    if (!route) return { verdict: 'ok' };
    const raw = raws[i];
    const got = docOf.get(i);
    // readRaw answers one entry per key asked for, in order, and so does getDocuments for every route.
    if (raw === undefined || !docOf.has(i))
      throw new Error(`verify: no ${raw === undefined ? 'read' : 'document answer'} for key ${i} of ${keys.length}`);
    const doc = got;
    if (!raw.exists) return doc ? { verdict: 'extra', why: 'Redis has no such key' } : { verdict: 'ok' };
    if (raw.changing) return { verdict: 'stale', why: 'the key changed type while verify read it' };
    const state = stateOf.get(i);
    if (state) return checkShaped(route, db, k.key, state, doc);
    if (!doc) return { verdict: 'missing' };
    const c = compareDocument(k.bytes, db, raw, doc, route.shape.json !== false);
    if ('refused' in c) return { verdict: 'refused', why: c.refused };
    return c.same ? { verdict: 'ok' } : { verdict: 'stale', why: c.why };
  });
}

function reshapes(shape: DocumentShape): boolean {
  return (
    shape.keep !== undefined ||
    shape.rename !== undefined ||
    shape.coerce !== undefined ||
    shape.transform !== undefined
  );
}

/** A rule's transform may make no document of a value: absent is then right. */
function checkShaped(
  route: Route,
  db: number,
  key: string,
  state: KeyState,
  doc: Record<string, unknown> | undefined,
): Check {
  if (typeof doc?.refused === 'string') return { verdict: 'refused', why: doc.refused };
  let expected: DocOperation;
  try {
    expected = toOperation(route, route.shape, db, key, state);
  } catch (err) {
    if (err instanceof DocumentRejectedError)
      return {
        verdict: 'stale',
        why: `the rule refuses the value (${err.message}), but its document is not the refusal stub`,
      };
    throw err;
  }
  if (expected.op === 'delete')
    return doc ? { verdict: 'extra', why: 'the rule makes no document of this value' } : { verdict: 'ok' };
  if (!doc) return { verdict: 'missing' };
  return sameDocument(expected.doc, doc)
    ? { verdict: 'ok' }
    : { verdict: 'stale', why: 'not the document the rule builds from the value' };
}

/**
 * For each document: is it one the rules would keep? `extra` when its key is gone or now maps
 * to another index or id. With `realtime`, a document that is itself gone by now is fine.
 */
async function checkDocs(deps: VerifyDeps, refs: readonly DocRef[], realtime: boolean): Promise<Verdict[]> {
  if (refs.length === 0) return [];
  const verdicts = new Array<Verdict>(refs.length).fill('ok');
  for (const [db, group] of positionsByDb(refs)) {
    const exists = await existsMany(
      deps.source.db(db),
      group.map(({ ref }) => ref.key),
    );
    group.forEach(({ ref, i }, j) => {
      const route = deps.router.route(db, ref.key);
      const stillMapped = exists[j] === true && route?.index === ref.index && route.id === ref.id;
      if (!stillMapped) verdicts[i] = 'extra';
    });
  }
  if (realtime) {
    const flagged = refs.map((r, i) => ({ r, i })).filter(({ i }) => verdicts[i] === 'extra');
    if (flagged.length > 0) {
      const got = await getDocuments(
        deps.sink,
        flagged.map(({ r }) => r),
      );
      got.forEach((d, j) => {
        const flag = flagged[j]; // one answer per document asked for, in order
        if (flag !== undefined && d === undefined) verdicts[flag.i] = 'ok';
      });
    }
  }
  return verdicts;
}

/** The refs of each database, each with its position in `refs`. */
function positionsByDb<R extends KeyRef>(refs: readonly R[]): Map<number, { ref: R; i: number }[]> {
  const out = new Map<number, { ref: R; i: number }[]>();
  refs.forEach((ref, i) => {
    const list = out.get(ref.db);
    if (list) list.push({ ref, i });
    else out.set(ref.db, [{ ref, i }]);
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

function groupByDb(refs: readonly ScannedKey[]): Map<number, ScannedKey[]> {
  const out = new Map<number, ScannedKey[]>();
  for (const r of refs) {
    const list = out.get(r.db) ?? [];
    list.push(r);
    out.set(r.db, list);
  }
  return out;
}

function refId(r: KeyRef): string {
  return `${r.db}\u0000${r.key}`;
}

/** The sources of documents in any indices, in the order asked (one request per index). */
async function getDocuments(
  sink: Sink,
  refs: readonly { index: string; id: string }[],
): Promise<(Record<string, unknown> | undefined)[]> {
  const out = new Array<Record<string, unknown> | undefined>(refs.length);
  const byIndex = new Map<string, number[]>();
  refs.forEach((r, i) => {
    const list = byIndex.get(r.index);
    if (list) list.push(i);
    else byIndex.set(r.index, [i]);
  });
  for (const [index, positions] of byIndex) {
    const docs = await sink.getDocuments(
      index,
      positions.map((i) => refs[i]?.id ?? ''),
    );
    positions.forEach((p, j) => (out[p] = docs[j]));
  }
  return out;
}
