import { displayKey } from '../shared/core/bytes';
import type { KeyRouter } from '../shared/core/mapping/router';
import { isOwnKey, type SyncJobData } from '../shared/core/queue';

/** Keys named in a refusal before it says "and N more". */
const KEYS_SHOWN = 5;

/**
 * Why a job must not be processed, or undefined when it may. The queue is not a trust
 * boundary one can rely on (anyone who can write to it, a dashboard user among them, can add
 * a job), so a worker reads only what the configuration says is synced: a job for another
 * database or for keys the rules skip would otherwise copy data nobody chose to expose into
 * an index. Checked before anything is read.
 */
export function jobRefusal(
  data: SyncJobData,
  databases: readonly number[],
  router: KeyRouter,
  prefix: string,
): string | undefined {
  if (!databases.includes(data.db)) {
    return `refused: database ${data.db} is not synced (redis.databases: [${databases.join(', ')}]); nothing was read`;
  }
  const unsynced = data.keys.filter((key) => isOwnKey(prefix, key) || !router.syncs(data.db, key));
  if (unsynced.length === 0) return undefined;
  const shown = unsynced.slice(0, KEYS_SHOWN).map((k) => JSON.stringify(displayKey(k)));
  if (unsynced.length > KEYS_SHOWN) shown.push(`… and ${unsynced.length - KEYS_SHOWN} more`);
  return `refused: ${unsynced.length} of ${data.keys.length} keys are not synced by the mapping rules (${shown.join(', ')}); nothing was read`;
}
