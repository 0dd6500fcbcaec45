import { spawnSync } from 'node:child_process';
import { REPO_ROOT, STACK_SCRIPT, TEST_STACK_DIR } from './global-setup';

/** Stops the `.stack-test` Elasticsearch if (and only if) global-setup.ts started it. */
export default function globalTeardown(): void {
  if (globalThis.__REDIS_ES_SYNC_TEST_STACK_STARTED__ !== true) return;
  const result = spawnSync('bash', [STACK_SCRIPT, 'down'], {
    cwd: REPO_ROOT,
    env: { ...process.env, STACK_DIR: TEST_STACK_DIR },
    stdio: ['ignore', 'pipe', 'pipe'],
    encoding: 'utf8',
    timeout: 2 * 60_000,
  });
  globalThis.__REDIS_ES_SYNC_TEST_STACK_STARTED__ = false;
  if (result.error !== undefined || result.status !== 0) {
    process.stderr.write(
      `[global-teardown] scripts/dev-stack.sh down failed (${result.error?.message ?? `exit ${String(result.status)}`}):\n` +
        `${result.stdout ?? ''}${result.stderr ?? ''}\n`,
    );
  }
}
