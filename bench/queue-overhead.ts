import { unfinishedJobs } from '../shared/core/queue';
import { startPipelineProcesses } from './live';
import { connect, drained, resetServers, sleep, type BenchEnv, type CliProcess } from './support';

const INDEX = 'bench-overhead';

export interface OverheadResult {
  changes: number;
  commandsPerChange: number;
  bytesInPerChange: number;
  bytesOutPerChange: number;
  /** Calls per change of each command the queue Redis served, most first. */
  byCommand: { command: string; perChange: number }[];
}

/**
 * Redis commands and bytes the queue Redis serves per change, from INFO commandstats and
 * INFO stats around `changes` distinct-key changes at a moderate rate (no coalescing).
 */
export async function queueOverheadScenario(env: BenchEnv, changes: number, rate = 2000): Promise<OverheadResult> {
  const c = connect(env);
  let procs: CliProcess[] = [];
  try {
    await resetServers(c, `${INDEX}*`);
    procs = await startPipelineProcesses(env, INDEX, 1);
    await sleep(500);
    await c.queueRedis.config('RESETSTAT');
    const started = performance.now();
    for (let sent = 0; sent < changes;) {
      const due = Math.min(changes, Math.floor((rate * (performance.now() - started)) / 1000)) - sent;
      if (due > 0) {
        const pipe = c.source.pipeline();
        for (let i = 0; i < due; i++) pipe.set(`overhead:${sent + i}`, 'x');
        await pipe.exec();
        sent += due;
      }
      await sleep(5);
    }
    let polls = 1;
    for (; (await unfinishedJobs(c.queue)) > 0; polls++) await sleep(20);
    await drained(c.queue, 0);
    polls++;
    // Our own polling above is part of the counts; measure one poll alone and take them out.
    const perPoll = await commandsOfOnePoll(c);
    const stats = parseInfo(await c.queueRedis.info('stats'));
    const cmdstats = parseCommandStats(await c.queueRedis.info('commandstats'));
    for (const [cmd, calls] of Object.entries(perPoll))
      cmdstats[cmd] = Math.max(0, (cmdstats[cmd] ?? 0) - calls * (polls + 1));
    delete cmdstats.info;
    delete cmdstats.config;
    const total = Object.values(cmdstats).reduce((a, b) => a + b, 0);
    return {
      changes,
      commandsPerChange: total / changes,
      bytesInPerChange: Number(stats.total_net_input_bytes) / changes,
      bytesOutPerChange: Number(stats.total_net_output_bytes) / changes,
      byCommand: Object.entries(cmdstats)
        .map(([command, calls]) => ({ command, perChange: calls / changes }))
        .filter((r) => r.perChange >= 0.01)
        .sort((a, b) => b.perChange - a.perChange),
    };
  } finally {
    await Promise.all(procs.map((p) => p.stop()));
    await c.close();
  }
}

/** The commands one unfinishedJobs() call costs, counted on a quiet queue. */
async function commandsOfOnePoll(c: ReturnType<typeof connect>): Promise<Record<string, number>> {
  const before = parseCommandStats(await c.queueRedis.info('commandstats'));
  await unfinishedJobs(c.queue);
  const after = parseCommandStats(await c.queueRedis.info('commandstats'));
  const perPoll: Record<string, number> = {};
  for (const [cmd, calls] of Object.entries(after)) {
    const d = calls - (before[cmd] ?? 0);
    if (d > 0 && cmd !== 'info') perPoll[cmd] = d;
  }
  return perPoll;
}

function parseInfo(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\r\n')) {
    const i = line.indexOf(':');
    if (i > 0) out[line.slice(0, i)] = line.slice(i + 1);
  }
  return out;
}

function parseCommandStats(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [, command, calls] of text.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm))
    if (command !== undefined) out[command] = Number(calls);
  return out;
}
