import type { Redis } from 'ioredis';
import { leaseKeys } from '../../producers/lease';
import type { ConfigInput } from '../../shared/platform/config/schema';
import { exited, spawnCli, waitFor } from './pipeline';

export type Cli = ReturnType<typeof spawnCli>;

/** Short enough that a paused producer loses the lease within a test, long enough for two cores shared by several test runs. */
export const LEASE = { leaseTtlMs: 1500, leaseRenewMs: 250 } as const;

export const leads = (c: Cli): boolean => c.output().includes('capture started under the lease');
export const steppedDown = (c: Cli): boolean => c.output().includes('producer lease lost: stopping capture');

/** The fencing number the queue Redis last handed out: how many acquisitions there were. */
export async function fenceNumber(queueRedis: Redis): Promise<number> {
  return Number((await queueRedis.get(leaseKeys('redis-es-sync').fence)) ?? 0);
}

/**
 * Two producer processes started at the same moment, racing for the lease; resolves once one
 * leads and the other stands by, as [leader, standby].
 */
export async function racingProducers(input: ConfigInput, children: Cli[]): Promise<[Cli, Cli]> {
  const a = spawnCli({ ...input, logLevel: 'info' }, ['producer']);
  const b = spawnCli({ ...input, logLevel: 'info' }, ['producer']);
  children.push(a, b);
  const standingBy = (c: Cli): boolean => c.output().includes('standby: another producer holds the lease');
  await waitFor(
    'one producer to lead and the other to stand by',
    async () => [leads(a), leads(b), standingBy(a), standingBy(b), a.exitCode, b.exitCode],
    ([la, lb, sa, sb, ea, eb]) => ((la && sb) || (lb && sa)) as boolean || ea !== null || eb !== null,
    60000,
  );
  if (a.exitCode !== null || b.exitCode !== null) throw new Error(`a producer exited:\n${a.output()}\n${b.output()}`);
  return leads(a) ? [a, b] : [b, a];
}

/**
 * Writes rounds `from`..`to` through `round`; once `pauseAt` is reached, freezes the leader
 * (SIGSTOP) and keeps writing until the standby has taken over, then lets the old leader run
 * again (SIGCONT) with whatever it had captured, and writes on.
 */
export async function burstWithPausedLeader(opts: {
  rounds: number;
  pauseAt: number;
  round: (i: number) => Promise<unknown>;
  leader: Cli;
  standby: Cli;
}): Promise<void> {
  const { leader, standby } = opts;
  for (let i = 0; i < opts.rounds; i++) {
    await opts.round(i);
    if (i === opts.pauseAt) {
      leader.kill('SIGSTOP');
      // Writes go on while it is frozen: they are the old leader's in-flight state and then the new one's.
      let j = 0;
      while (!leads(standby)) {
        await opts.round(opts.rounds + j++);
        await new Promise((r) => setTimeout(r, 20));
        if (j > 2000) throw new Error(`the standby did not take over:\n${standby.output()}`);
      }
      leader.kill('SIGCONT');
    }
    if (i % 20 === 0) await new Promise((r) => setTimeout(r, 5));
  }
}

export async function killAll(children: Cli[]): Promise<void> {
  for (const c of children.splice(0)) {
    c.kill('SIGCONT');
    c.kill('SIGKILL');
    await exited(c);
  }
}
