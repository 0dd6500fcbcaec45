import { generationOf } from '../../../shared/sink/indices';
import { readRebuildState, type RebuildPhase } from '../../../shared/core/rebuild-state';
import type { RedisClient } from '../../../shared/platform/redis';

/** The rebuild in progress, as `status` and the metrics show it. */
export interface RebuildStatus {
  phase: RebuildPhase;
  startedAt: number;
  indices: { index: string; from: string; to: string; generation: number | undefined }[];
  done: number;
  total: number;
  /** Keys written into the new generations over the keys at the start (0 to 1); 1 from verify on. */
  progress: number;
  /** In the grace phase: when the old generations are deleted (absent with `--keep`). */
  deleteAfter?: number;
}

/** The rebuild recorded in the queue Redis, or undefined when none runs. */
export async function rebuildStatus(queueRedis: RedisClient, prefix: string): Promise<RebuildStatus | undefined> {
  const state = await readRebuildState(queueRedis, prefix);
  if (!state) return undefined;
  const progress = state.phase === 'snapshot' ? (state.total > 0 ? Math.min(1, state.done / state.total) : 0) : 1;
  return {
    phase: state.phase,
    startedAt: state.startedAt,
    indices: state.targets.map((t) => ({ ...t, generation: generationOf(t.index, t.to) })),
    done: state.done,
    total: state.total,
    progress,
    ...(state.deleteAfter !== undefined ? { deleteAfter: state.deleteAfter } : {}),
  };
}

/** The `rebuild_progress_ratio` gauge's series: one per index being rebuilt. */
export async function rebuildProgressSeries(
  queueRedis: RedisClient,
  prefix: string,
): Promise<{ index: string; ratio: number }[]> {
  const status = await rebuildStatus(queueRedis, prefix);
  return status ? status.indices.map((i) => ({ index: i.index, ratio: status.progress })) : [];
}
