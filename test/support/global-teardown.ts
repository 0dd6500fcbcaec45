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
}
