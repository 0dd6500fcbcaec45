import type { Client } from '@elastic/elasticsearch';
import { docKey, scanIndex } from '../shared/es-scan';
import type { Logger } from '../shared/logger';
import { reconciliations } from '../shared/metrics';
import type { KeyRouter } from '../shared/mapping/router';
import { existsMany, type SourceRedis } from '../shared/redis';
import type { ChangeSink } from './change-sink';
import { snapshot, type SnapshotDeps, type SnapshotOptions } from './snapshot';

export interface ReconcileDeps extends SnapshotDeps {
  es: Client;
  router: KeyRouter;
  source: SourceRedis;
  sink: ChangeSink;
  logger: Logger;
}

export interface ReconcileResult {
  enqueued: number;
  vanished: number;
  aborted: boolean;
}

/**
 * Repairs whatever a capture gap let slip: every existing key is enqueued again, and every
 * document whose key no longer exists is enqueued too, so the worker (reading it as missing)
 * deletes it. Both go through the normal versioned path, so reconciliation can run at any
 * time, beside live traffic, without ever writing something stale.
 */
export async function reconcile(deps: ReconcileDeps, opts: Omit<SnapshotOptions, 'resume' | 'src'>): Promise<ReconcileResult> {
  const snap = await snapshot(deps, { ...opts, resume: false, src: 'reconcile' });
  const result: ReconcileResult = { enqueued: snap.keys, vanished: 0, aborted: snap.aborted };
  if (snap.aborted) return result;
  const vanished = await enqueueVanished(deps, opts.databases, opts.signal);
  if (!vanished.aborted) reconciliations.inc();
  deps.logger.info({ enqueued: result.enqueued, vanished: vanished.enqueued }, 'reconciliation enqueued');
  return { ...result, vanished: vanished.enqueued, aborted: vanished.aborted };
}

/**
 * Enqueues every document of these databases whose key no longer exists, so the worker
 * (reading it as missing) deletes it. On its own after a full replication resync, whose
 * snapshot already enqueued the keys that exist.
 */
export async function enqueueVanished(
  deps: Pick<ReconcileDeps, 'es' | 'router' | 'source' | 'sink'>,
  databases: readonly number[],
  signal?: AbortSignal,
): Promise<{ enqueued: number; aborted: boolean }> {
  let enqueued = 0;
  const synced = new Set(databases);
  for (const index of deps.router.indices()) {
    for await (const page of scanIndex(deps.es, index)) {
      if (signal?.aborted) return { enqueued, aborted: true };
      const byDb = new Map<number, string[]>();
      for (const doc of page) {
        const k = docKey(doc.source);
        if (!k || !synced.has(k.db)) continue;
        const list = byDb.get(k.db) ?? [];
        list.push(k.key);
        byDb.set(k.db, list);
      }
      for (const [db, keys] of byDb) {
        const exists = await existsMany(deps.source.db(db), keys);
        const gone = keys.filter((_, i) => !exists[i]);
        if (gone.length > 0) enqueued += await deps.sink.enqueueKeys(db, gone, 'reconcile');
      }
    }
  }
  return { enqueued, aborted: false };
}
