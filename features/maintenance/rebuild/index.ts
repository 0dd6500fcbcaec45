import { displayKey, keyFromBytes } from '../../../shared/core/bytes';
import type { KeyRouter } from '../../../shared/core/mapping/router';
import { isOwnKey } from '../../../shared/core/queue';
import {
  clearRebuildState,
  readRebuildState,
  REBUILD_STATE_SETTLE_MS,
  writeRebuildState,
  type RebuildPhase,
  type RebuildState,
  type RebuildTarget,
} from '../../../shared/core/rebuild-state';
import type { AppConfig } from '../../../shared/platform/config/schema';
import { SyncError } from '../../../shared/platform/errors';
import type { Logger } from '../../../shared/platform/logger';
import type { Progress } from '../../../shared/platform/progress';
import { countKeys, type RedisClient, type SourceRedis } from '../../../shared/platform/redis';
import { sleep } from '../../../shared/platform/sleep';
import { generationIndex, generationOf, indexBody } from '../../../shared/sink/indices';
import type { AliasAction, Sink } from '../../../shared/sink/port';
import { formatReport, inSync, verify, type VerifyReport } from '../verify';

/**
 * `rebuild` refused to start (`REBUILD_REFUSED`) or its verify found the new generation out of
 * sync (`REBUILD_VERIFY_FAILED`); either way the aliases are as they were.
 */
export class RebuildError extends SyncError {
  override readonly name = 'RebuildError';
  constructor(
    readonly code: 'REBUILD_REFUSED' | 'REBUILD_VERIFY_FAILED',
    message: string,
    readonly report?: VerifyReport,
  ) {
    super(message);
  }
}

/** Writes the current state of keys through the worker's versioned path, on the router given. */
export type KeyWriter = (router: KeyRouter) => (db: number, keys: readonly string[]) => Promise<void>;

export interface RebuildDeps {
  sink: Sink;
  source: SourceRedis;
  queueRedis: RedisClient;
  router: KeyRouter;
  mapping: AppConfig['mapping'];
  writer: KeyWriter;
  logger: Logger;
  progress?: Progress;
  /** Told each phase as it begins (the CLI prints it; a test may act between phases). */
  onPhase?: (phase: RebuildPhase, targets: readonly RebuildTarget[]) => Promise<void>;
}

export interface RebuildOptions {
  prefix: string;
  databases: readonly number[];
  patterns: readonly string[];
  scanCount: number;
  batchKeys: number;
  verifySettleMs: number;
  /** Only this index (default: every index the rules write to). */
  index?: string;
  keep: boolean;
  graceMs: number;
}

export interface RebuildResult {
  targets: RebuildTarget[];
  /** True when an interrupted rebuild was taken up again. */
  resumed: boolean;
  report: VerifyReport;
  /** The old generations deleted after the grace period (none with `keep`). */
  deleted: string[];
}

/**
 * Builds the next generation of each index beside the live one and swaps the aliases once it is
 * in sync (docs/operations.md, rebuilds). Every step is recorded in the queue Redis before the
 * next begins, so a rebuild stopped anywhere is resumed by the next call.
 */
export async function rebuild(deps: RebuildDeps, opts: RebuildOptions): Promise<RebuildResult> {
  const log = deps.logger.child({ component: 'rebuild' });
  let state = await readRebuildState(deps.queueRedis, opts.prefix);
  const resumed = state !== undefined;
  if (state) {
    if (opts.index !== undefined && !state.targets.some((t) => t.index === opts.index))
      throw new RebuildError(
        'REBUILD_REFUSED',
        `a rebuild of ${state.targets.map((t) => t.index).join(', ')} is in progress (${state.phase}); run rebuild without --index (or with one of those) to resume it`,
      );
    log.info({ phase: state.phase, targets: state.targets, done: state.done }, 'resuming the interrupted rebuild');
  } else state = await begin(deps, opts, log);

  const targetRouter = deps.router.retargeted(new Map(state.targets.map((t) => [t.index, t.to])));
  let report: VerifyReport = { checked: 0, missing: [], stale: [], extra: [], refused: [], why: {} };
  if (state.phase === 'snapshot') {
    // Workers act on the rebuild state they last read for up to REBUILD_STATE_TTL_MS: one that
    // read it just before the rebuild was recorded writes the live generation alone until then.
    // No key is read for the snapshot before that is over, so every change such a write carries
    // is read by the snapshot too (docs/architecture.md, rebuilds). Waited on a resume as well: the
    // interrupted run may have stopped right after recording the state.
    log.info({ ms: REBUILD_STATE_SETTLE_MS }, 'waiting for every worker to see the rebuild');
    await sleep(REBUILD_STATE_SETTLE_MS);
    await deps.onPhase?.('snapshot', state.targets);
    state = await snapshotInto(deps, opts, state, targetRouter);
    state = { ...state, phase: 'verify' };
    await writeRebuildState(deps.queueRedis, opts.prefix, state);
  }
  if (state.phase === 'verify') {
    await deps.onPhase?.('verify', state.targets);
    report = await verifyTargets(deps, opts, state, targetRouter);
    if (!inSync(report)) {
      // The workers stop writing to the new generations; the next rebuild replaces them.
      await clearRebuildState(deps.queueRedis, opts.prefix);
      throw new RebuildError('REBUILD_VERIFY_FAILED', verifyFailure(report, state.targets), report);
    }
    await swap(deps.sink, state.targets, log);
    state = {
      ...state,
      phase: 'grace',
      ...(opts.keep || state.keep ? {} : { deleteAfter: Date.now() + state.graceMs }),
    };
    await writeRebuildState(deps.queueRedis, opts.prefix, state);
  }
  await deps.onPhase?.('grace', state.targets);
  const deleted = await retire(deps, state, log);
  await clearRebuildState(deps.queueRedis, opts.prefix);
  return { targets: state.targets, resumed, report, deleted };
}

/** Plans the new generations, creates them empty with today's settings and mappings, records the state. */
async function begin(deps: RebuildDeps, opts: RebuildOptions, log: Logger): Promise<RebuildState> {
  // The canary's index holds only heartbeats that replace themselves within seconds: nothing to rebuild.
  const all = deps.router.indices().filter((i) => i !== deps.router.heartbeatIndex());
  if (opts.index !== undefined && !all.includes(opts.index))
    throw new RebuildError(
      'REBUILD_REFUSED',
      `no rule writes to index ${opts.index} (the rules write to ${all.join(', ')})`,
    );
  const indices = opts.index !== undefined ? [opts.index] : all;
  const targets: RebuildTarget[] = [];
  for (const index of indices) {
    const live = await deps.sink.resolveIndex(index);
    if (live.kind === 'missing')
      throw new RebuildError(
        'REBUILD_REFUSED',
        `index ${index} does not exist yet: start the pipeline (run or worker), which creates it`,
      );
    if (live.kind === 'index' && opts.keep)
      throw new RebuildError(
        'REBUILD_REFUSED',
        `${index} is a concrete index (from before aliases): its swap deletes it to make the name an alias, so --keep cannot keep it; run without --keep, or snapshot it first (_snapshot, _clone)`,
      );
    if (live.kind === 'alias' && live.indices.length !== 1)
      throw new RebuildError(
        'REBUILD_REFUSED',
        `alias ${index} points at ${live.indices.join(', ')}: a rebuild swaps an alias of one index only`,
      );
    const from = live.kind === 'alias' ? (live.indices[0] ?? index) : index;
    const generation = (generationOf(index, from) ?? 1) + 1;
    targets.push({ index, from, to: generationIndex(index, generation) });
  }
  // A generation left by a rebuild whose verify failed is behind no alias, and the workers stopped
  // writing to it within REBUILD_STATE_TTL_MS of that rebuild clearing its state: wait that out
  // before deleting it, or a late mirror write would create it again, with a mapping of the
  // engine's guessing that createIndex would then take as the new generation.
  const stale: string[] = [];
  for (const t of targets) if ((await deps.sink.resolveIndex(t.to)).kind !== 'missing') stale.push(t.to);
  if (stale.length > 0) {
    log.info({ stale, ms: REBUILD_STATE_SETTLE_MS }, 'stale generations: deleting them once no worker writes to them');
    await sleep(REBUILD_STATE_SETTLE_MS);
  }
  for (const t of targets) {
    if ((await deps.sink.deleteIndex(t.to)) === 'deleted') log.info({ index: t.to }, 'deleted a stale generation');
    await deps.sink.createIndex(t.to, indexBody(t.index, deps.mapping));
    log.info({ index: t.index, from: t.from, to: t.to }, 'created the new generation');
  }
  const state: RebuildState = {
    startedAt: Date.now(),
    phase: 'snapshot',
    targets,
    done: 0,
    total: await countKeys(deps.source, opts.databases),
    keep: opts.keep,
    graceMs: opts.graceMs,
  };
  // Only now, with every new generation there, are the workers told to write to them too: a
  // write to a missing index would create it with a mapping of the engine's guessing.
  await writeRebuildState(deps.queueRedis, opts.prefix, state);
  return state;
}

/** SCANs the source from where the state says and writes every key into the new generations. */
async function snapshotInto(
  deps: RebuildDeps,
  opts: RebuildOptions,
  start: RebuildState,
  targetRouter: KeyRouter,
): Promise<RebuildState> {
  const write = deps.writer(targetRouter);
  const building = new Set(start.targets.map((t) => t.to));
  let state = start;
  deps.progress?.setTotal(state.total);
  deps.progress?.increment(state.done);
  for (const [d, db] of opts.databases.entries()) {
    const masters = await deps.source.masters(db);
    for (const [n, node] of masters.entries()) {
      for (const [p, pattern] of opts.patterns.entries()) {
        const at = state.scan;
        // Positions before the recorded one were scanned to the end by the interrupted run.
        if (at && before([d, n, p], [at.db, at.node, at.pattern])) continue;
        let cursor = at?.db === d && at.node === n && at.pattern === p ? at.cursor : '0';
        if (cursor === 'done') continue;
        do {
          // Buffers: a key name that is not UTF-8 would lose its bytes as text.
          const [next, page] = await node.client.scanBuffer(cursor, 'MATCH', pattern, 'COUNT', opts.scanCount);
          const keys = page
            .map(keyFromBytes)
            .filter((k) => !isOwnKey(opts.prefix, k) && building.has(targetRouter.route(db, k)?.index ?? ''));
          for (let i = 0; i < keys.length; i += opts.batchKeys) await write(db, keys.slice(i, i + opts.batchKeys));
          cursor = next.toString('latin1');
          state = {
            ...state,
            done: state.done + page.length,
            total: Math.max(state.total, state.done + page.length),
            scan: { db: d, node: n, pattern: p, cursor: cursor === '0' ? 'done' : cursor },
          };
          await writeRebuildState(deps.queueRedis, opts.prefix, state);
          deps.progress?.increment(page.length);
        } while (cursor !== '0');
      }
    }
  }
  deps.progress?.stop();
  return state;
}

/** Whether position a comes before b (database, master, pattern). */
function before(a: readonly number[], b: readonly number[]): boolean {
  for (let i = 0; i < a.length; i++) {
    const x = a[i] ?? 0;
    const y = b[i] ?? 0;
    if (x !== y) return x < y;
  }
  return false;
}

async function verifyTargets(
  deps: RebuildDeps,
  opts: RebuildOptions,
  state: RebuildState,
  targetRouter: KeyRouter,
): Promise<VerifyReport> {
  for (const t of state.targets) await deps.sink.refresh(t.to);
  const report = await verify(
    { sink: deps.sink, source: deps.source, router: targetRouter },
    {
      databases: opts.databases,
      patterns: opts.patterns,
      prefix: opts.prefix,
      scanCount: opts.scanCount,
      settleMs: opts.verifySettleMs,
    },
  );
  deps.logger.info({ report: formatReport(report) }, 'verified the new generation');
  return report;
}

const NAMED = 5;

function verifyFailure(report: VerifyReport, targets: readonly RebuildTarget[]): string {
  const named = [
    ...report.missing.map((k) => ['missing', k]),
    ...report.stale.map((k) => ['stale', k]),
    ...report.extra.map((k) => ['extra', k]),
  ]
    .slice(0, NAMED)
    .map(([kind, key]) => {
      const why = report.why[key ?? ''];
      return `${kind} ${displayKey(key ?? '')}${why ? ` (${why})` : ''}`;
    });
  const aliases = targets.map((t) => `${t.index} → ${t.from}`).join(', ');
  const kept = targets.map((t) => t.to).join(', ');
  return (
    `the new generation is not in sync (${formatReport(report)}: ${named.join('; ')}); ` +
    `nothing was swapped (${aliases}); ${kept} kept for inspection, the next rebuild replaces it`
  );
}

/**
 * One `_aliases` request for every index, so searches see all old generations or all new ones.
 * A target already swapped (a rebuild stopped right after its swap) is left alone.
 */
async function swap(sink: Sink, targets: readonly RebuildTarget[], log: Logger): Promise<void> {
  const actions: AliasAction[] = [];
  for (const t of targets) {
    const now = await sink.resolveIndex(t.index);
    if (now.kind === 'alias' && now.indices.length === 1 && now.indices[0] === t.to) continue;
    actions.push({ add: { index: t.to, alias: t.index } });
    // A concrete index under the name goes in the same request that makes the name an alias.
    if (t.from === t.index) actions.push({ removeIndex: { index: t.index } });
    else actions.push({ remove: { index: t.from, alias: t.index } });
  }
  if (actions.length > 0) await sink.updateAliases(actions);
  log.info({ swapped: targets.map((t) => `${t.index} → ${t.to}`) }, 'aliases swapped');
}

/** Waits out the grace period, then deletes the old generations (none with keep, nor a concrete index, gone at the swap). */
async function retire(deps: RebuildDeps, state: RebuildState, log: Logger): Promise<string[]> {
  if (state.deleteAfter === undefined) {
    log.info({ kept: state.targets.filter((t) => t.from !== t.index).map((t) => t.from) }, 'old generations kept');
    return [];
  }
  const wait = state.deleteAfter - Date.now();
  if (wait > 0) {
    log.info({ ms: wait }, 'grace period: the old generations are deleted after it');
    await sleep(wait);
  }
  const deleted: string[] = [];
  for (const t of state.targets) {
    if (t.from === t.index) continue;
    if ((await deps.sink.deleteIndex(t.from)) === 'deleted') deleted.push(t.from);
  }
  log.info({ deleted }, 'old generations deleted');
  return deleted;
}
