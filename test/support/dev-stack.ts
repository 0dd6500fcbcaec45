import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

/** Found by walking up, so this works from test/support and compiled under dist/ alike. */
export const REPO_ROOT = findRepoRoot(__dirname);
export const STACK_SCRIPT = join(REPO_ROOT, 'scripts', 'dev-stack.sh');
/** The stack jest's global setup starts; benchmarks use their own. */
export const TEST_STACK_DIR = '.stack-test';

/**
 * Runs `scripts/dev-stack.sh <args>` for the stack in `stackDir` (relative to the repository)
 * and returns what it printed; throws with that output when it fails.
 */
export function devStack(
  args: readonly string[],
  stackDir: string,
  env: Record<string, string> = {},
  timeoutMs = 10 * 60_000,
): string {
  const result = spawnSync('bash', [STACK_SCRIPT, ...args], {
    cwd: REPO_ROOT,
    env: { ...process.env, ...env, STACK_DIR: stackDir },
    stdio: ['ignore', 'pipe', 'pipe'],
    encoding: 'utf8',
    timeout: timeoutMs,
  });
  const output = `${result.stdout ?? ''}${result.stderr ?? ''}`;
  if (result.error !== undefined || result.status !== 0) {
    throw new Error(
      `STACK_DIR=${stackDir} scripts/dev-stack.sh ${args.join(' ')} failed (${result.error?.message ?? `exit ${String(result.status)}`}):\n${output}`,
    );
  }
  return output;
}

/** {@link devStack} without blocking, so several stacks can start at once. */
export function devStackAsync(
  args: readonly string[],
  stackDir: string,
  env: Record<string, string> = {},
  timeoutMs = 10 * 60_000,
): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', [STACK_SCRIPT, ...args], {
      cwd: REPO_ROOT,
      env: { ...process.env, ...env, STACK_DIR: stackDir },
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: timeoutMs,
    });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.once('error', (err) => {
      reject(
        new Error(`STACK_DIR=${stackDir} scripts/dev-stack.sh ${args.join(' ')} failed (${err.message}):\n${output}`),
      );
    });
    child.once('close', (code, signal) => {
      if (code === 0) resolve(output);
      else
        reject(
          new Error(
            `STACK_DIR=${stackDir} scripts/dev-stack.sh ${args.join(' ')} failed (${signal ?? `exit ${String(code)}`}):\n${output}`,
          ),
        );
    });
  });
}

/** The KEY=VALUE lines dev-stack.sh wrote to `<stackDir>/env`. */
export function readStackEnv(stackDir: string): Record<string, string> {
  const vars: Record<string, string> = {};
  for (const line of readFileSync(join(REPO_ROOT, stackDir, 'env'), 'utf8').split('\n')) {
    const match = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (match?.[1] !== undefined && match[2] !== undefined) vars[match[1]] = match[2];
  }
  return vars;
}

function findRepoRoot(from: string): string {
  for (let dir = from; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'scripts', 'dev-stack.sh'))) return dir;
    if (dirname(dir) === dir) throw new Error(`no repository root above ${from}`);
  }
}
