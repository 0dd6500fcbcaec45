import { devStack, TEST_STACK_DIR } from './dev-stack';

/** Stops the `.stack-test` Elasticsearch if (and only if) global-setup.ts started it. */
export default function globalTeardown(): void {
  if (globalThis.__REDIS_ES_SYNC_TEST_STACK_STARTED__ !== true) return;
  globalThis.__REDIS_ES_SYNC_TEST_STACK_STARTED__ = false;
  try {
    devStack(['down'], TEST_STACK_DIR, {}, 2 * 60_000);
  } catch (err) {
    process.stderr.write(`[global-teardown] ${(err as Error).message}\n`);
  }
}
