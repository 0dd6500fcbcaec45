import type { ConfigFlags } from '../../shared/config/load';
import { createProgress } from '../../shared/progress';
import { formatReport, inSync, verify } from '../../shared/verify';
import { createContext } from '../context';

export interface VerifyFlags {
  settleMs: string;
  list: string;
}

/** Prints `checked N, missing M, stale S, extra E`; exit code 1 when anything is out of sync. */
export async function verifyCommand(flags: ConfigFlags, opts: VerifyFlags): Promise<number> {
  const ctx = createContext(flags);
  const { config } = ctx;
  try {
    const report = await verify(
      { es: ctx.es, source: ctx.source, router: ctx.router },
      {
        databases: config.redis.databases,
        patterns: config.redis.patterns,
        prefix: config.queue.prefix,
        scanCount: config.producer.scanCount,
        settleMs: Number(opts.settleMs),
        progress: process.stderr.isTTY ? createProgress('verify', ctx.logger) : undefined,
      },
    );
    process.stdout.write(`${formatReport(report)}\n`);
    const limit = Number(opts.list);
    for (const [kind, keys] of [['missing', report.missing], ['stale', report.stale], ['extra', report.extra]] as const) {
      for (const key of keys.slice(0, limit)) process.stdout.write(`${kind}\t${key}\n`);
    }
    return inSync(report) ? 0 : 1;
  } finally {
    await ctx.close();
  }
}
