import { z } from 'zod';
import type { RedisClient } from '../platform/redis';

/**
 * The rebuild in progress, as one JSON value in the queue Redis (`<prefix>:rebuild`). It is
 * what lets `rebuild` resume after a crash, and what tells every worker to write each change to
 * the generation being built as well as to the live one.
 *
 * Phases: `snapshot` (every key written into the new generations; `scan` is how far), `verify`
 * (the new generations checked against Redis), `grace` (the aliases swapped; the old generations
 * are deleted at `deleteAfter`). Workers mirror writes in `snapshot` and `verify` only: after
 * the swap the alias itself leads to the new generation.
 */
const Target = z.object({
  /** The name everything reads and writes: the alias (or, before the first rebuild, a concrete index). */
  index: z.string(),
  /** What `index` resolved to when the rebuild began: the live generation, or `index` itself when it was concrete. */
  from: z.string(),
  /** The generation being built. */
  to: z.string(),
});

const StateSchema = z.object({
  startedAt: z.number(),
  phase: z.enum(['snapshot', 'verify', 'grace']),
  targets: z.array(Target).min(1),
  /** Keys written into the new generations so far, and the keys the source held at the start. */
  done: z.number(),
  total: z.number(),
  /** Where the snapshot's SCAN stands: the database, master and pattern (positions in their lists), and the cursor. */
  scan: z.object({ db: z.number(), node: z.number(), pattern: z.number(), cursor: z.string() }).optional(),
  keep: z.boolean(),
  graceMs: z.number(),
  /** Set with the swap: when the old generations may go. */
  deleteAfter: z.number().optional(),
});

export type RebuildTarget = z.infer<typeof Target>;
export type RebuildState = z.infer<typeof StateSchema>;
export type RebuildPhase = RebuildState['phase'];

export function rebuildKey(prefix: string): string {
  return `${prefix}:rebuild`;
}

export async function readRebuildState(redis: RedisClient, prefix: string): Promise<RebuildState | undefined> {
  const raw = await redis.get(rebuildKey(prefix));
  if (raw === null) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch (err) {
    throw new Error(`${rebuildKey(prefix)} is not JSON: ${(err as Error).message}`, { cause: err });
  }
  const parsed = StateSchema.safeParse(value);
  if (!parsed.success) throw new Error(`${rebuildKey(prefix)} is not a rebuild state: ${parsed.error.message}`);
  return parsed.data;
}

export async function writeRebuildState(redis: RedisClient, prefix: string, state: RebuildState): Promise<void> {
  await redis.set(rebuildKey(prefix), JSON.stringify(state));
}

export async function clearRebuildState(redis: RedisClient, prefix: string): Promise<void> {
  await redis.del(rebuildKey(prefix));
}

/**
 * How long a worker acts on a rebuild state it read (ms), so its bulks do not each pay a GET on
 * the queue Redis. Safe because `rebuild` waits REBUILD_STATE_SETTLE_MS after recording a rebuild
 * before its snapshot reads any key (docs/architecture.md, rebuilds): a change made after a
 * worker's cached "no rebuild" went stale is written to the new generation by that worker, and
 * one made before is read by the snapshot, which starts later still.
 */
export const REBUILD_STATE_TTL_MS = 1000;

/**
 * What `rebuild` waits after recording a rebuild before its snapshot, and after a failed rebuild
 * before deleting the generation it left: twice the workers' TTL, as the two are measured by
 * different processes' clocks.
 */
export const REBUILD_STATE_SETTLE_MS = 2 * REBUILD_STATE_TTL_MS;

/**
 * The workers' `mirrors`: the state read at most once per `ttlMs`, shared by every bulk in that
 * time (and by those that ask while the read is under way). An entry's age counts from before its
 * GET was sent, so no answer is used longer after Redis gave it than `ttlMs`. A failed read is
 * not kept: the attempt that asked retries, and the next call reads again.
 */
export function cachedMirrorTargets(
  read: () => Promise<RebuildState | undefined>,
  ttlMs = REBUILD_STATE_TTL_MS,
  now: () => number = () => performance.now(),
): () => Promise<ReadonlyMap<string, string>> {
  let entry: { at: number; targets: Promise<ReadonlyMap<string, string>> } | undefined;
  return () => {
    const at = now();
    if (entry === undefined || at - entry.at >= ttlMs) {
      const fresh = { at, targets: read().then(mirrorTargets) };
      fresh.targets.catch(() => {
        if (entry === fresh) entry = undefined;
      });
      entry = fresh;
    }
    return entry.targets;
  };
}

/** Index → generation being built, for each index whose writes must go to both generations now. */
export function mirrorTargets(state: RebuildState | undefined): ReadonlyMap<string, string> {
  if (state === undefined || state.phase === 'grace') return new Map();
  return new Map(state.targets.map((t) => [t.index, t.to]));
}
