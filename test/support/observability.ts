import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';

export const DEPLOY = join(__dirname, '..', '..', 'deploy');
export const ALERTS = join(DEPLOY, 'prometheus', 'alerts.yml');
export const ALERT_TESTS = join(DEPLOY, 'prometheus', 'alerts.test.yml');
export const DASHBOARD = join(DEPLOY, 'grafana', 'redis-es-sync.json');

/** promtool, from Debian's `prometheus` package (.ci/run installs it). */
export function promtool(args: string[], input?: string): { status: number | null; output: string } {
  const found = spawnSync('promtool', ['--version'], { encoding: 'utf8' });
  if (found.error) throw new Error('promtool not found: apt-get install prometheus (Debian), as .ci/run does');
  const run = spawnSync('promtool', args, { encoding: 'utf8', input, cwd: join(DEPLOY, 'prometheus') });
  return { status: run.status, output: `${run.stdout}${run.stderr}` };
}

/** Every PromQL expression the shipped alerts and dashboard evaluate. */
export function shippedExpressions(): { where: string; expr: string }[] {
  const { groups } = parse(readFileSync(ALERTS, 'utf8')) as { groups: { rules: { alert: string; expr: string }[] }[] };
  const out = groups.flatMap((g) => g.rules.map((r) => ({ where: `alert ${r.alert}`, expr: r.expr })));
  const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as {
    panels: { title: string; targets?: { expr: string }[] }[];
  };
  for (const panel of dashboard.panels)
    for (const t of panel.targets ?? []) out.push({ where: `panel "${panel.title}"`, expr: t.expr });
  return out;
}

/** The redis_es_sync_* series an expression reads, with the label names its matchers name. */
export function seriesIn(expr: string): { name: string; labels: string[] }[] {
  const found: { name: string; labels: string[] }[] = [];
  for (const m of expr.matchAll(/\b(redis_es_sync_[a-z_]+)(\{([^}]*)\})?/g)) {
    const labels = [...(m[3] ?? '').matchAll(/([a-zA-Z_]\w*)\s*(=~|!~|!=|=)/g)].map((l) => l[1] ?? '');
    found.push({ name: m[1] ?? '', labels });
  }
  return found;
}
