import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { registry } from '../../../shared/platform/metrics';
import { ALERTS, ALERT_TESTS, DASHBOARD, promtool, seriesIn, shippedExpressions } from '../../support/observability';

/** Suffixes Prometheus adds to a histogram's (or summary's) own name. */
const HISTOGRAM_SERIES = /_(bucket|sum|count)$/;

function registered(): Map<string, { type: string; labels: Set<string> }> {
  const metrics = new Map<string, { type: string; labels: Set<string> }>();
  for (const m of registry.getMetricsAsArray()) {
    const { labelNames } = m as unknown as { labelNames?: readonly string[] };
    metrics.set(m.name, { type: String(m.type), labels: new Set(labelNames ?? []) });
  }
  return metrics;
}

describe('shipped alerts and dashboard', () => {
  it('pass promtool check rules and their unit tests', () => {
    const check = promtool(['check', 'rules', ALERTS]);
    expect(check).toMatchObject({ status: 0 });
    expect(check.output).toMatch(/SUCCESS: \d+ rules found/);
    const tests = promtool(['test', 'rules', ALERT_TESTS]);
    expect(tests.output).toMatch(/SUCCESS/);
    expect(tests.status).toBe(0);
  });

  it('fail promtool test rules when an alert does not fire as its test says', () => {
    // The unit tests must be able to fail: the same tests against rules that never fire.
    const rules = parse(readFileSync(ALERTS, 'utf8')) as { groups: { rules: { expr: string }[] }[] };
    for (const rule of rules.groups.flatMap((g) => g.rules)) rule.expr = 'vector(1) == 0';
    const dir = mkdtempSync(join(tmpdir(), 'alerts-'));
    try {
      writeFileSync(join(dir, 'alerts.yml'), stringify(rules));
      copyFileSync(ALERT_TESTS, join(dir, 'alerts.test.yml'));
      const run = promtool(['test', 'rules', join(dir, 'alerts.test.yml')]);
      expect(run.status).not.toBe(0);
      // Every alert with a firing case is reported missing, not just the first.
      expect(run.output.match(/alertname: \w+/g)?.length ?? 0).toBeGreaterThanOrEqual(8);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('read only metrics and labels the tool exports', () => {
    const metrics = registered();
    const problems: string[] = [];
    for (const { where, expr } of shippedExpressions()) {
      for (const { name, labels } of seriesIn(expr)) {
        const base = metrics.get(name) ?? metrics.get(name.replace(HISTOGRAM_SERIES, ''));
        if (!base) {
          problems.push(`${where}: ${name} is not exported`);
          continue;
        }
        for (const label of labels) {
          if (base.labels.has(label) || (label === 'le' && base.type === 'histogram')) continue;
          problems.push(`${where}: ${name} has no label ${label}`);
        }
      }
    }
    expect(problems).toEqual([]);
  });

  it('is a dashboard Grafana can import: unique panel ids, every query on the chosen data source', () => {
    const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as {
      uid: string;
      panels: { id: number; type: string; datasource?: { uid: string }; targets?: { expr: string }[] }[];
      templating: { list: { name: string }[] };
    };
    expect(dashboard.uid).toBe('redis-es-sync');
    const ids = dashboard.panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(dashboard.templating.list.map((v) => v.name)).toContain('datasource');
    const queries = dashboard.panels.filter((p) => p.type !== 'row');
    expect(queries.length).toBeGreaterThan(10);
    for (const p of queries) {
      expect(p.datasource?.uid).toBe('${datasource}');
      expect(p.targets?.length).toBeGreaterThan(0);
    }
  });
});
