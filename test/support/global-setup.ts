import { devStack, readStackEnv, TEST_STACK_DIR } from './dev-stack';

declare global {
  var __REDIS_ES_SYNC_TEST_STACK_STARTED__: boolean | undefined;
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
  process.stderr.write(
    `\n[global-setup] starting Elasticsearch: STACK_DIR=${TEST_STACK_DIR} bash scripts/dev-stack.sh up es\n`,
  );
  // A port the OS picks, never the well-known 9200: two stacks started at once must not collide.
  const output = devStack(['up', 'es'], TEST_STACK_DIR, { ES_PORT: 'auto' });
  const url = readStackEnv(TEST_STACK_DIR).ELASTICSEARCH_URL;
  if (url === undefined) {
    throw new Error(`${TEST_STACK_DIR}/env has no ELASTICSEARCH_URL after dev-stack.sh up es:\n${output}`);
  }
  process.env.ELASTICSEARCH_URL = url;
  // Only stop in teardown what this run started; a stack someone kept warm stays up.
  globalThis.__REDIS_ES_SYNC_TEST_STACK_STARTED__ = !output.includes('Elasticsearch already running');
  process.stderr.write(`[global-setup] ELASTICSEARCH_URL=${url} (${((Date.now() - started) / 1000).toFixed(1)}s)\n`);
}
