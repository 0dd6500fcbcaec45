import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT } from '../support/dev-stack';

/**
 * `npm run bench` at tiny sizes, so the harness cannot rot: every scenario runs against its own
 * stack and reports numbers. What the numbers are is the benchmark's business, not this test's.
 */
describe('the benchmark harness (smoke sizes)', () => {
  let running: ChildProcess | undefined;
  afterAll(() => {
    if (running?.exitCode === null && running.signalCode === null) running.kill('SIGKILL');
  });

  it('runs every scenario and writes a report of each', async () => {
    const out = join(mkdtempSync(join(tmpdir(), 'res-bench-smoke-')), 'smoke.md');
    const child = spawn(process.execPath, [join(REPO_ROOT, 'dist', 'bench', 'run.js'), '--smoke', '--out', out], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    running = child;
    const code = await new Promise<number | null>((r) => child.once('exit', r));
    expect(code === 0 ? 'exit 0' : output).toBe('exit 0');

    const report = readFileSync(out, 'utf8');
    expect(report).toContain('SMOKE SIZES');
    const row = (heading: string): string => {
      const section = report.split('### ').find((s) => s.startsWith(heading));
      if (!section) throw new Error(`no "${heading}" section in:\n${report}`);
      return section;
    };
    expect(row('Snapshot throughput')).toMatch(
      /\| 2,000 \| 1 \| [\d,]+ \| [\d,]+ \| [\d,]+ % \([\d,]+–[\d,]+\) \| [\d,]+ \(N = 500\) \| [\d.,]+ × \([\d.,]+–[\d.,]+\) \| [\d,]+ \(N = 200\) \|/,
    );
    expect(row('Where the worker spends its time')).toMatch(/\| [\d.]+ % \|/);
    expect(row('Live changes').match(/^\| 1 \| (200|max) \|/gm)).toHaveLength(2);
    expect(row('Hot keys')).toMatch(/final state exact: yes/);
    expect(row('Memory with a backlog')).toMatch(/\| 3,000 \| [\d,]+ \| \d+ MiB \| \d+ MiB \| \d+ MiB \|/);
    expect(row('Queue overhead per change')).toMatch(/\| evalsha \| [\d.]+ \|/);
    const search = row('Search API');
    expect(search).toMatch(
      /^\| off \(TTL 1 ms\) \| [\d,]+ \| [\d,]+ \| [\d.,]+ \| [\d.,]+ \| [\d.,]+ \| [\d.]+ % \|$/m,
    );
    expect(search).toMatch(
      /^\| on \(TTL 600,000 ms\) \| [\d,]+ \| [\d,]+ \| [\d.,]+ \| [\d.,]+ \| [\d.,]+ \| [\d.]+ % \|$/m,
    );
    const scale = row('Scale-out');
    expect(
      scale.match(/^\| [13] \| [\d,]+ \| [\d,]+ \| [\d,]+ \| [\d,]+ \| [\d,]+ \| [\d.,]+ \| [\d,]+ % \|$/gm),
    ).toHaveLength(2);
    expect(scale).toMatch(/^\| 1 \| 3 \| [\d,]+ \| [\d.,]+ \| [\d.,]+ \| [\d.,]+ % \| [\d.,]+ % \| -?[\d.,]+ \|$/m);
    expect(scale).toMatch(
      /^\| 2 \| [12] \+ [12] \| [\d,]+ \| [\d.,]+ \| [\d.,]+ \/ [\d.,]+ \| [\d.,]+ % \| [\d.,]+ % \| -?[\d.,]+ \|$/m,
    );
    const big = row('Big snapshot');
    // The producer killed half-way and resumed: every key indexed, verify clean, no key lost.
    expect(big).toMatch(
      /^\| 20,000 \| [\d,]+ s \| [\d,]+ \| [\d,]+ \| [\d,]+ \| [\d.,]+ s \(restarted at [\d.,]+ s; [\d,]+ indexed\) \| [\d,]+ % \| [\d,]+ \| [\d,]+ \([\d.,]+ s\) \| [\d,]+ \([\d.]+ %\) \| 20,000 \| 0, 0, 0 of 20,000 /m,
    );
    expect(big).toContain('Nothing lost: yes.');
    expect(big).toMatch(/^\| 20,000 keys( \| [\d,]+ MiB){6} \|$/m);
    // Starting its own Elasticsearch and nine scenarios on a busy 2-core machine takes a while.
  }, 900_000);

  it('runs snapshot and live per engine (--engines), here against OpenSearch 2, with its own bulk limit', async () => {
    const out = join(mkdtempSync(join(tmpdir(), 'res-bench-smoke-')), 'engines.md');
    const child = spawn(
      process.execPath,
      [join(REPO_ROOT, 'dist', 'bench', 'run.js'), '--smoke', '--engines', 'opensearch-2', '--out', out],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    running = child;
    const code = await new Promise<number | null>((r) => child.once('exit', r));
    expect(code === 0 ? 'exit 0' : output).toBe('exit 0');

    const report = readFileSync(out, 'utf8');
    expect(report).toContain('--engines opensearch-2');
    expect(report).toMatch(
      /^\| opensearch-2 \| 2\.19\.\d+ \| 2,000 \| [\d,]+ \| [\d,]+ \| [\d,]+ % \| [\d.,]+ \| [\d.,]+ \| /m,
    );
    expect(report.match(/^\| opensearch-2 \| (200|max) \|/gm)).toHaveLength(2);
  }, 600_000);
});
