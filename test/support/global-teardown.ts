import { devStackAsync, TEST_STACK_DIR } from './dev-stack';

/**
 * Stops, in parallel, what global-setup.ts started (and only that): the `.stack-test`
 * Elasticsearch and the matrix engines. dev-stack.sh continues a paused (SIGSTOPped) node first.
 */
export default async function globalTeardown(): Promise<void> {
  const dirs = globalThis.__REDIS_ES_SYNC_TEST_ENGINES_STARTED__ ?? [];
  globalThis.__REDIS_ES_SYNC_TEST_ENGINES_STARTED__ = [];
  if (globalThis.__REDIS_ES_SYNC_TEST_STACK_STARTED__ === true) dirs.push(TEST_STACK_DIR);
  globalThis.__REDIS_ES_SYNC_TEST_STACK_STARTED__ = false;
  const results = await Promise.allSettled(dirs.map((dir) => devStackAsync(['down'], dir, {}, 2 * 60_000)));
  for (const r of results) {
    if (r.status === 'rejected') process.stderr.write(`[global-teardown] ${(r.reason as Error).message}\n`);
  }
  exitIfLeftRunning();
}

/** How long the run may outlive its last test before it is ended. */
const EXIT_GRACE_MS = 60_000;

/**
 * A test that fails part-way may leave a loop or a socket of its own running; under
 * `--runInBand` that keeps jest's process alive after the summary, and CI then sits until its
 * own time limit. This bounds that wait: the timer is unref'd, so a clean run exits as before,
 * and jest's exit handler still sets the failing exit code on `process.exit()`.
 */
function exitIfLeftRunning(): void {
  setTimeout(() => {
    process.stderr.write(
      `[global-teardown] still running ${EXIT_GRACE_MS / 1000} s after the last test, held by: ${process.getActiveResourcesInfo().join(', ')}; exiting\n`,
    );
    process.exit();
  }, EXIT_GRACE_MS).unref();
}
