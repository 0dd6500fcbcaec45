import { docKey } from '../shared/sink/doc-key';
import type { Sink } from '../shared/sink/port';
import type { Logger } from '../shared/platform/logger';
import {
  deletionsRefused,
  reconciliationLastSuccess,
  reconciliations,
  reconciliationsFailed,
} from '../shared/platform/metrics';
import { LeaseLostError } from '../shared/platform/errors';
import { writeReconcileRecord } from './reconcile-record';
import type { KeyRouter } from '../shared/core/mapping/router';
import { existsMany } from '../shared/core/key-state';
import { keySlot } from '../shared/core/key-slot';
import type { SourceRedis } from '../shared/platform/redis';
import type { ChangeSink } from './change-sink';
import { snapshot, type SnapshotDeps, type SnapshotOptions } from './snapshot';

export interface ReconcileDeps extends SnapshotDeps {
  /** The search engine whose documents are checked against the source. */
  searchSink: Sink;
  router: KeyRouter;
  source: SourceRedis;
  sink: ChangeSink;
  logger: Logger;
}

export interface ReconcileResult {
  enqueued: number;
  vanished: number;
  aborted: boolean;
  /** Indices whose deletes the guard held back: nothing of them was enqueued. */
  refused: DeletionRefusal[];
}

/**
 * How many deletes one reconciliation may enqueue for an index: more than `maxShare` of its
 * documents and more than `minDeletes` looks like a wrong or emptied source, not like changes.
 * `undefined`: no limit (an operator's explicit `reconcile --allow-mass-deletion`).
 */
export interface DeletionGuard {
  maxShare: number;
  minDeletes: number;
}

export interface DeletionRefusal {
  index: string;
  documents: number;
  /** Vanished keys found before the scan stopped: at least this many would have been deleted. */
  atLeast: number;
  limit: number;
}

export type ReconcileOptions = Omit<SnapshotOptions, 'resume' | 'src'> & { guard: DeletionGuard | undefined };

/**
 * Repairs whatever a capture gap let slip: every existing key is enqueued again, and every
 * document whose key no longer exists is enqueued too, so the worker (reading it as missing)
 * deletes it. Both go through the normal versioned path, so reconciliation can run at any
 * time, beside live traffic, without ever writing something stale.
 */
export async function reconcile(deps: ReconcileDeps, opts: ReconcileOptions): Promise<ReconcileResult> {
  const started = Date.now();
  let result: ReconcileResult;
  try {
    result = await reconcilePass(deps, opts);
  } catch (err) {
    // A lost lease ends the pass by design: the next leader runs its own.
    if (!(err instanceof LeaseLostError)) {
      reconciliationsFailed.inc();
      await record(deps, opts.prefix, {
        result: 'failed',
        finishedAt: Date.now(),
        ms: Date.now() - started,
        enqueued: 0,
        vanished: 0,
        guarded: [],
        error: err instanceof Error ? err.message : String(err),
      });
    }
    throw err;
  }
  if (!result.aborted) {
    reconciliations.inc();
    reconciliationLastSuccess.set(Date.now() / 1000);
    await record(deps, opts.prefix, {
      result: 'ok',
      finishedAt: Date.now(),
      ms: Date.now() - started,
      enqueued: result.enqueued,
      vanished: result.vanished,
      guarded: result.refused.map((r) => r.index),
    });
  }
  return result;
}

/** The outcome for `status`; a queue Redis that cannot take it costs the record, not the pass. */
async function record(deps: ReconcileDeps, prefix: string, rec: Parameters<typeof writeReconcileRecord>[2]) {
  await writeReconcileRecord(deps.queueRedis, prefix, rec).catch((err: unknown) =>
    deps.logger.warn({ err }, 'could not record the reconciliation in the queue Redis'),
  );
}

async function reconcilePass(deps: ReconcileDeps, opts: ReconcileOptions): Promise<ReconcileResult> {
  const { guard, ...snapshotOpts } = opts;
  const snap = await snapshot(deps, { ...snapshotOpts, resume: false, src: 'reconcile' });
  const result: ReconcileResult = { enqueued: snap.keys, vanished: 0, aborted: snap.aborted, refused: [] };
  if (snap.aborted) return result;
  const vanished = await enqueueVanished(deps, opts.databases, opts.signal, guard);
  deps.logger.info({ enqueued: result.enqueued, vanished: vanished.enqueued }, 'reconciliation enqueued');
  return { ...result, vanished: vanished.enqueued, aborted: vanished.aborted, refused: vanished.refused };
}

/** Vanished keys enqueued per job when they were held back for the guard. */
const DELETE_BATCH = 1000;

/**
 * Enqueues every document of these databases whose key no longer exists, so the worker
 * (reading it as missing) deletes it. On its own after a full replication resync, whose
 * snapshot already enqueued the keys that exist.
 *
 * With a guard, an index's deletes are held until its scan ends and enqueued only if they
 * stay within the limit; past it the scan of that index stops, nothing of it is enqueued,
 * and the refusal is logged, counted in `redis_es_sync_deletions_refused` and returned.
 * Memory stays bounded by the limit.
 *
 * A capture shard's source answers for its master's slots only: documents of keys in other
 * slots are left to the shards that own them, so one shard's hand-over decides no other
 * shard's deletions. The slots are read once, when the pass starts; a slot moved by
 * resharding meanwhile may be checked by both shards or by neither until the next pass,
 * which costs a duplicate or a late delete, never a wrong one (the worker deletes only a key
 * it reads as missing).
 */
export async function enqueueVanished(
  deps: Pick<ReconcileDeps, 'searchSink' | 'router' | 'source' | 'sink'> & { logger?: Logger },
  databases: readonly number[],
  signal: AbortSignal | undefined,
  guard: DeletionGuard | undefined,
): Promise<{ enqueued: number; aborted: boolean; refused: DeletionRefusal[] }> {
  let enqueued = 0;
  const refused: DeletionRefusal[] = [];
  const synced = new Set(databases);
  const served = await deps.source.slotsServed();
  for (const index of deps.router.indices()) {
    const documents = guard ? await deps.searchSink.count(index) : 0;
    const limit = guard ? Math.max(guard.minDeletes, Math.floor(guard.maxShare * documents)) : Infinity;
    const held = new Map<number, string[]>();
    let vanished = 0;
    let over = false;
    for await (const page of deps.searchSink.scan(index)) {
      if (signal?.aborted) return { enqueued, aborted: true, refused };
      const byDb = new Map<number, string[]>();
      for (const doc of page) {
        const k = docKey(doc.source);
        if (!k || !synced.has(k.db) || (served && !served.has(keySlot(k.key)))) continue;
        const list = byDb.get(k.db) ?? [];
        list.push(k.key);
        byDb.set(k.db, list);
      }
      for (const [db, keys] of byDb) {
        const exists = await existsMany(deps.source.db(db), keys);
        const gone = keys.filter((_, i) => !exists[i]);
        if (gone.length === 0) continue;
        vanished += gone.length;
        if (!guard) enqueued += await deps.sink.enqueueKeys(db, gone, 'reconcile');
        else {
          const list = held.get(db) ?? [];
          for (const k of gone) list.push(k);
          held.set(db, list);
        }
      }
      if (vanished > limit) {
        over = true;
        break;
      }
    }
    if (over) {
      const refusal: DeletionRefusal = { index, documents, atLeast: vanished, limit };
      refused.push(refusal);
      deletionsRefused.set({ index }, vanished);
      deps.logger?.error(
        { ...refusal, guard },
        'reconciliation would delete more documents than producer.deletionGuard allows: none were deleted. Check that the source Redis is the right one and holds its data (REDIS_URL, a restart without persistence); to delete them anyway run `redis-es-sync reconcile --allow-mass-deletion`',
      );
      continue;
    }
    deletionsRefused.set({ index }, 0);
    for (const [db, keys] of held) {
      for (let i = 0; i < keys.length; i += DELETE_BATCH)
        enqueued += await deps.sink.enqueueKeys(db, keys.slice(i, i + DELETE_BATCH), 'reconcile');
    }
  }
  return { enqueued, aborted: false, refused };
}
