import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

/** Shared with global-teardown.ts (globalSetup and globalTeardown run in the same process). */
export const TEST_STACK_DIR = '.stack-test';
export const REPO_ROOT = resolve(__dirname, '..', '..');
export const STACK_SCRIPT = join(REPO_ROOT, 'scripts', 'dev-stack.sh');

declare global {
  var __REDIS_ES_SYNC_TEST_STACK_STARTED__: boolean | undefined;
}

function readEnvFile(path: string): Record<string, string> {
  const vars: Record<string, string> = {};
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    const match = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (match?.[1] !== undefined && match[2] !== undefined) vars[match[1]] = match[2];
  }
  return vars;
}

/**
 * Starts Elasticsearch once for the whole jest run (`STACK_DIR=.stack-test dev-stack.sh up es`)
 * unless ELASTICSEARCH_URL is already set, and exports ELASTICSEARCH_URL to every test worker.
 * A stack that was already running before jest started is reused and left running afterwards.
 */
export default function globalSetup(): void {
  globalThis.__REDIS_ES_SYNC_TEST_STACK_STARTED__ = false;
  const preset = process.env.ELASTICSEARCH_URL;
  if (preset !== undefined && preset.trim() !== '') {
    process.stderr.write(`\n[global-setup] using ELASTICSEARCH_URL=${preset} from the environment\n`);
    return;
  }

  const started = Date.now();
  process.stderr.write(`\n[global-setup] starting Elasticsearch: STACK_DIR=${TEST_STACK_DIR} bash scripts/dev-stack.sh up es\n`);
  const result = spawnSync('bash', [STACK_SCRIPT, 'up', 'es'], {
    cwd: REPO_ROOT,
    env: { ...process.env, STACK_DIR: TEST_STACK_DIR },
    stdio: ['ignore', 'pipe', 'pipe'],
    encoding: 'utf8',
    timeout: 10 * 60_000,
  });
  const output = `${result.stdout ?? ''}${result.stderr ?? ''}`;
  if (result.error !== undefined || result.status !== 0) {
    throw new Error(
      `scripts/dev-stack.sh up es failed (${result.error?.message ?? `exit ${String(result.status)}`}):\n${output}`,
    );
  }

  const vars = readEnvFile(join(REPO_ROOT, TEST_STACK_DIR, 'env'));
  const url = vars.ELASTICSEARCH_URL;
  if (url === undefined) {
    throw new Error(`${TEST_STACK_DIR}/env has no ELASTICSEARCH_URL after dev-stack.sh up es:\n${output}`);
  }
  process.env.ELASTICSEARCH_URL = url;
  // Only stop in teardown what this run started; a stack someone kept warm stays up.
  globalThis.__REDIS_ES_SYNC_TEST_STACK_STARTED__ = !/Elasticsearch already running/.test(output);
  process.stderr.write(`[global-setup] ELASTICSEARCH_URL=${url} (${((Date.now() - started) / 1000).toFixed(1)}s)\n`);
}
