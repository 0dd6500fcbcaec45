import { displayKey } from '../../shared/bytes';
import type { ConfigFlags } from '../../shared/config/load';
import { parseReplayFilter, replayFailed, type ReplayFilterFlags } from '../../shared/replay';
import { createContext } from '../context';

export interface ReplayFlags extends ReplayFilterFlags {
  dryRun?: boolean;
  list: string;
}

/** `replay`: retries the failed jobs matching every given filter; prints how many. */
export async function replayCommand(flags: ConfigFlags, opts: ReplayFlags): Promise<void> {
  const filter = parseReplayFilter(opts);
  const ctx = createContext(flags);
  const limit = Number(opts.list);
  let listed = 0;
  try {
    const result = await replayFailed(ctx.queue(), filter, {
      dryRun: opts.dryRun,
      onMatch: (job) => {
        if (listed++ >= limit) return;
        const keys = job.data.keys ?? [];
        const first = displayKey(keys[0] ?? '');
        const shown = keys.length > 1 ? `${first} (+${keys.length - 1} keys)` : first;
        const reason = (job.failedReason ?? '').split('\n', 1)[0];
        process.stdout.write(`${job.id}\t${new Date(job.finishedOn ?? 0).toISOString()}\t${shown}\t${reason}\n`);
      },
    });
    const verb = opts.dryRun ? 'would retry' : 'retried';
    const count = opts.dryRun ? result.matched : result.retried;
    const skipped = result.skipped > 0 ? ` (${result.skipped} no longer failed)` : '';
    process.stdout.write(`${verb} ${count} of ${result.scanned} failed jobs${skipped}\n`);
  } finally {
    await ctx.close();
  }
}
