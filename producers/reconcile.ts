import type { Client } from '@elastic/elasticsearch';
import { docKey, scanIndex } from '../shared/es-scan';
import type { Logger } from '../shared/logger';
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
  const synced = new Set(opts.databases);
  for (const index of deps.router.indices()) {
    for await (const page of scanIndex(deps.es, index)) {
      if (opts.signal?.aborted) return { ...result, aborted: true };
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
        if (gone.length > 0) result.vanished += await deps.sink.enqueueKeys(db, gone, 'reconcile');
      }
    }
  }
  deps.logger.info({ enqueued: result.enqueued, vanished: result.vanished }, 'reconciliation enqueued');
  return result;
}
