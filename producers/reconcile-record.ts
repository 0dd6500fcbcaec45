import type { RedisClient } from '../shared/platform/redis';

/**
 * The last full reconciliation's outcome, kept in the queue Redis by whoever ran it (a
 * producer's reconciler or the `reconcile` command), so `status` can show it from anywhere.
 */
export interface ReconcileRecord {
  result: 'ok' | 'failed';
  /** ms since epoch. */
  finishedAt: number;
  ms: number;
  enqueued: number;
  vanished: number;
  /** Indices whose deletes the mass-deletion guard held back. */
  guarded: string[];
  /** The error's message, for a failed pass. */
  error?: string;
}

export function reconcileRecordKey(prefix: string): string {
  return `${prefix}:reconcile:last`;
}

export async function writeReconcileRecord(redis: RedisClient, prefix: string, rec: ReconcileRecord): Promise<void> {
  await redis.set(reconcileRecordKey(prefix), JSON.stringify(rec));
}

export async function readReconcileRecord(redis: RedisClient, prefix: string): Promise<ReconcileRecord | undefined> {
  const text = await redis.get(reconcileRecordKey(prefix));
  if (text === null) return undefined;
  try {
    const v = JSON.parse(text) as Partial<ReconcileRecord>;
    if ((v.result !== 'ok' && v.result !== 'failed') || typeof v.finishedAt !== 'number') return undefined;
    return {
      result: v.result,
      finishedAt: v.finishedAt,
      ms: Number(v.ms) || 0,
      enqueued: Number(v.enqueued) || 0,
      vanished: Number(v.vanished) || 0,
      guarded: Array.isArray(v.guarded) ? v.guarded.filter((i): i is string => typeof i === 'string') : [],
      ...(typeof v.error === 'string' ? { error: v.error } : {}),
    };
  } catch {
    return undefined;
  }
}
