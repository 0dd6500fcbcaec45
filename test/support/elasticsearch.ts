import { randomBytes } from 'node:crypto';
import { devStack, TEST_STACK_DIR } from './dev-stack';

/**
 * URL of the Elasticsearch the tests run against. Set by test/support/global-setup.ts
 * (which starts `.stack-test` via scripts/dev-stack.sh) or by the caller's environment.
 */
export function esUrl(): string {
  const url = process.env.ELASTICSEARCH_URL;
  if (url === undefined || url.trim() === '') {
    throw new Error(
      'ELASTICSEARCH_URL is not set. Run the tests through jest (its globalSetup starts Elasticsearch ' +
        'with `STACK_DIR=.stack-test bash scripts/dev-stack.sh up es`), or export ELASTICSEARCH_URL ' +
        'pointing at a running Elasticsearch 8.x.',
    );
  }
  return url.replace(/\/+$/, '');
}

let counter = 0;

function slug(value: string, maxLength: number): string {
  return value
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, maxLength)
    .replace(/-+$/, '');
}

function currentTestName(): string {
  // `expect` only exists inside a jest test environment.
  const state = typeof expect === 'undefined' ? undefined : expect.getState();
  return state?.currentTestName ?? '';
}

/**
 * A lowercase index name no other test (file, run or worker) uses:
 * `<prefix>-<test-name-slug>-<pid><counter><random>`. Valid per Elasticsearch's index
 * naming rules (lowercase, no special characters, does not start with - _ +, < 255 bytes).
 */
export function uniqueIndex(prefix: string): string {
  counter += 1;
  const parts = [
    slug(prefix, 40) || 'test',
    slug(currentTestName(), 60),
    `${process.pid.toString(36)}${counter.toString(36)}${randomBytes(4).toString('hex')}`,
  ].filter((part) => part !== '');
  return parts.join('-');
}

/**
 * Stops or starts the test stack's Elasticsearch (`STACK_DIR=.stack-test dev-stack.sh down|up es`)
 * on the port it had, so clients holding ELASTICSEARCH_URL reconnect to it. Only an
 * Elasticsearch that dev-stack.sh runs can be stopped this way.
 */
export function testElasticsearch(action: 'down' | 'up'): void {
  const port = new URL(esUrl()).port;
  const output = devStack([action, 'es'], TEST_STACK_DIR, action === 'up' ? { ES_PORT: port } : {}, 5 * 60_000);
  if (action === 'down' && !/stopping elasticsearch/i.test(output)) {
    throw new Error(
      `no Elasticsearch of ${TEST_STACK_DIR} was running to stop (is ELASTICSEARCH_URL an outside server?):\n${output}`,
    );
  }
}
