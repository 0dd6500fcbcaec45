import type { ConfigFlags } from '../../shared/platform/config/load';
import { EXIT } from '../../shared/platform/errors';
import { openContext } from '../context';
import { statusReport, type StatusReport } from '../status/report';

export interface StatusFlags {
  json?: boolean;
  maxFreshness: number;
  /** commander's `--no-keys`. */
  keys: boolean;
}

/**
 * `status`: one screen (or, with `--json`, one JSON object) of what an operator checks first.
 * Exit code 1 when something needs attention (each reason is listed), 0 otherwise; a
 * dependency that does not answer fails the command as for every other one.
 */
export async function statusCommand(
  flags: ConfigFlags,
  opts: StatusFlags,
  out: (text: string) => void = (text) => process.stdout.write(text),
): Promise<number> {
  const ctx = await openContext(flags, ['source-redis', 'queue-redis', 'elasticsearch']);
  try {
    const report = await statusReport(ctx, { maxFreshnessS: opts.maxFreshness, keys: opts.keys });
    out(opts.json ? `${JSON.stringify(report, null, 2)}\n` : formatStatus(report));
    return report.attention.length > 0 ? EXIT.failure : EXIT.ok;
  } finally {
    await ctx.close();
  }
}

function counts(c: Readonly<Record<string, number>>): string {
  return Object.entries(c)
    .map(([k, n]) => `${k} ${n}`)
    .join(', ');
}

export function formatStatus(r: StatusReport): string {
  const lines: string[] = [];
  const row = (label: string, text: string): void => {
    lines.push(`${label.padEnd(14)}${text}`);
  };
  const { capture } = r;
  const leases = {
    single: 'one producer lease',
    sharded: 'a lease per master',
    none: 'no lease, every producer captures',
  };
  row('capture', `${capture.mode}, ${leases[capture.leases]}`);
  for (const h of capture.holders)
    row(capture.leases === 'sharded' ? `  ${h.shard.slice(0, 12)}` : '  held by', h.holder ?? 'NOBODY');
  if (capture.producers) row('  producers', String(capture.producers.length));
  if (r.freshness.length === 0) row('freshness', 'not measured (producer.canary off, or no capturing producer yet)');
  for (const f of r.freshness)
    row(
      f === r.freshness[0] ? 'freshness' : '',
      `${f.shard}: ${f.seconds.toFixed(1)} s${f.current ? '' : ` (last measured ${f.measuredAt})`}`,
    );
  row('queue', `${counts(r.queue.total)}${r.queue.paused ? ' (PAUSED)' : ''}`);
  if (r.queue.partitions.length > 1) for (const p of r.queue.partitions) row(`  ${p.name}`, counts(p.counts));
  row('failed keys', r.failedKeys.total === 0 ? '0' : `${r.failedKeys.total}: ${counts(r.failedKeys.byReason)}`);
  const rec = r.reconciliation;
  row(
    'reconcile',
    rec === null
      ? 'none recorded'
      : `${rec.result} at ${rec.finishedAt} (${(rec.ms / 1000).toFixed(1)} s): enqueued ${rec.enqueued}, vanished ${rec.vanished}` +
          (rec.guarded.length > 0 ? `, deletes held back in ${rec.guarded.join(', ')}` : '') +
          (rec.error ? `: ${rec.error}` : ''),
  );
  for (const i of r.indices)
    row(
      i === r.indices[0] ? 'indices' : '',
      `${i.index}: ${i.documents} documents${i.keys === null ? '' : `, ${i.keys} keys`}`,
    );
  const rb = r.rebuild;
  row(
    'rebuild',
    rb === null
      ? 'none'
      : `${rb.phase} since ${rb.startedAt}: ${rb.indices.map((i) => `${i.index} ${i.from} → ${i.to}`).join(', ')}, ` +
          `${rb.done}/${rb.total} keys (${Math.round(rb.progress * 100)} %)` +
          (rb.deleteAfter ? `, old generation deleted after ${rb.deleteAfter}` : ''),
  );
  if (r.attention.length === 0) row('attention', 'nothing needs attention');
  else for (const a of r.attention) row(a === r.attention[0] ? 'ATTENTION' : '', a);
  return `${lines.join('\n')}\n`;
}
