import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createProgram, type ProgramIo } from '../../../cli/program';
import { EXIT } from '../../../shared/platform/errors';

/** A program whose output is collected instead of printed. */
function program(env: NodeJS.ProcessEnv = {}): {
  io: ProgramIo;
  out: () => string;
  err: () => string;
  run: (...args: string[]) => Promise<{ exitCode: number | undefined; failed: boolean }>;
} {
  let out = '';
  let err = '';
  const io: ProgramIo = { stdout: (t) => void (out += t), stderr: (t) => void (err += t), env };
  const cli = createProgram(io);
  return { io, out: () => out, err: () => err, run: (...args) => cli.run(['node', 'redis-es-sync', ...args]) };
}

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'res-program-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function configFile(yaml: string): string {
  const path = join(dir, `c${Math.random().toString(36).slice(2)}.yml`);
  writeFileSync(path, yaml);
  return path;
}

describe('createProgram, run in-process', () => {
  it('builds the program without parsing: every command is there, nothing ran', () => {
    const names = createProgram({ stdout: () => undefined, stderr: () => undefined, env: {} }).command.commands.map(
      (c) => c.name(),
    );
    expect(names).toEqual([
      'run',
      'producer',
      'worker',
      'snapshot',
      'reconcile',
      'verify',
      'rebuild',
      'replay',
      'failures',
      'resync',
      'status',
      'partitions',
      'dashboard',
      'serve',
    ]);
  });

  it('prints the help with the exit codes and ends with 0', async () => {
    const p = program();
    expect(await p.run('--help')).toEqual({ exitCode: EXIT.ok, failed: true });
    expect(p.out()).toContain('Usage: redis-es-sync');
    expect(p.out()).toContain('64 wrong command line');
  });

  it('refuses a --grace that is not a duration with exit code 64', async () => {
    const p = program();
    expect(await p.run('rebuild', '--grace', 'soon')).toEqual({ exitCode: EXIT.usage, failed: true });
    expect(p.err()).toContain('must be a duration such as 500ms, 90s, 5m or 1h');
  });

  it('answers an unknown command with the usage and exit code 64', async () => {
    const p = program();
    expect((await p.run('frobnicate')).exitCode).toBe(EXIT.usage);
    expect(p.err()).toContain("unknown command 'frobnicate'");
  });

  it('refuses an invalid configuration with exit code 2 before connecting to anything', async () => {
    const p = program();
    const file = configFile('logLevel: loud\nelasticsearch:\n  url: http://es.example:9200\n');
    expect((await p.run('verify', '--config', file)).exitCode).toBe(EXIT.config);
    expect(p.err()).toMatch(/^redis-es-sync: .*logLevel/m);
  });

  it("applies the capture mode's topology check from the registry (outbox cannot read a Cluster)", async () => {
    const p = program();
    const file = configFile(
      'redis:\n  cluster:\n    nodes: ["redis://10.0.0.1:7000"]\nqueue:\n  prefix: "{res}"\nelasticsearch:\n  url: http://es.example:9200\nproducer:\n  mode: outbox\n',
    );
    expect((await p.run('verify', '--config', file)).exitCode).toBe(EXIT.config);
    expect(p.err()).toContain('outbox mode needs a standalone or Sentinel source Redis, not a Cluster');
  });
});
