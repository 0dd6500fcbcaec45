import { devStackAsync, readStackEnv, TEST_STACK_DIR } from './dev-stack';
import {
  distributionPresent,
  engineStackDir,
  enginePid,
  ENGINE_MATRIX,
  FETCH_COMMAND,
  parseEngineServers,
  requestedEngineIds,
  SINK_TEST_ENGINES,
  type EngineServer,
} from './engines';

declare global {
  var __REDIS_ES_SYNC_TEST_STACK_STARTED__: boolean | undefined;
  /** Stack dirs (relative to the repository) of the matrix engines this run started. */
  var __REDIS_ES_SYNC_TEST_ENGINES_STARTED__: string[] | undefined;
}

/** The matrix engines are small: five JVMs share the machine during a run. */
const ENGINE_HEAP = '512m';
/**
 * Five JVMs starting at once on two cores take far longer than one alone (the wait covers
 * `bin/elasticsearch -d`, which returns only once the node has started, and then its health).
 */
const START_TIMEOUT_S = 600;
const DEV_STACK_TIMEOUT_MS = 2 * START_TIMEOUT_S * 1000;

/**
 * Once per jest run, in parallel:
 * - the default Elasticsearch 8.19 (`STACK_DIR=.stack-test dev-stack.sh up es`) unless
 *   ELASTICSEARCH_URL is already set; exported to every test as ELASTICSEARCH_URL;
 * - the engine matrix of test/support/engines.ts (TEST_ENGINES limits it), each in
 *   `.stack-test/engines/<id>`, unless SINK_TEST_ENGINES already describes running servers;
 *   exported as SINK_TEST_ENGINES.
 * Servers that were already running before jest started are reused and left running afterwards.
 */
export default async function globalSetup(): Promise<void> {
  globalThis.__REDIS_ES_SYNC_TEST_STACK_STARTED__ = false;
  globalThis.__REDIS_ES_SYNC_TEST_ENGINES_STARTED__ = [];
  const started = Date.now();
  const results = await Promise.allSettled([defaultElasticsearch(), engineMatrix()]);
  const failures = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failures.length > 0) {
    // jest runs no global teardown when the set-up fails: stop what did start.
    const { default: globalTeardown } = await import('./global-teardown');
    await globalTeardown();
    throw new Error(
      failures.map((f) => (f.reason instanceof Error ? f.reason.message : String(f.reason))).join('\n\n'),
    );
  }
  process.stderr.write(`[global-setup] servers ready in ${((Date.now() - started) / 1000).toFixed(1)}s\n`);
}

async function defaultElasticsearch(): Promise<void> {
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
  let output: string;
  try {
    output = await devStackAsync(
      ['up', 'es'],
      TEST_STACK_DIR,
      { ENGINE: 'elasticsearch', ES_VERSION: '8.19.9', ES_PORT: 'auto', ES_START_TIMEOUT: String(START_TIMEOUT_S) },
      DEV_STACK_TIMEOUT_MS,
    );
  } catch (err) {
    globalThis.__REDIS_ES_SYNC_TEST_STACK_STARTED__ = true;
    throw err;
  }
  const url = readStackEnv(TEST_STACK_DIR).ELASTICSEARCH_URL;
  if (url === undefined) {
    throw new Error(`${TEST_STACK_DIR}/env has no ELASTICSEARCH_URL after dev-stack.sh up es:\n${output}`);
  }
  process.env.ELASTICSEARCH_URL = url;
  // Only stop in teardown what this run started; a stack someone kept warm stays up.
  globalThis.__REDIS_ES_SYNC_TEST_STACK_STARTED__ = !output.includes('already running');
  process.stderr.write(`[global-setup] ELASTICSEARCH_URL=${url} (${((Date.now() - started) / 1000).toFixed(1)}s)\n`);
}

async function engineMatrix(): Promise<void> {
  const ids = requestedEngineIds();
  const preset = process.env[SINK_TEST_ENGINES];
  if (preset !== undefined && preset.trim() !== '') {
    const servers = parseEngineServers(preset);
    const absent = ids.filter((id) => !servers.some((s) => s.id === id));
    if (absent.length > 0)
      throw new Error(
        `${SINK_TEST_ENGINES} from the environment lacks ${absent.join(', ')} (unset it or TEST_ENGINES)`,
      );
    const chosen = servers.filter((s) => ids.includes(s.id));
    process.env[SINK_TEST_ENGINES] = JSON.stringify(chosen);
    process.stderr.write(`[global-setup] using ${SINK_TEST_ENGINES} from the environment: ${ids.join(', ')}\n`);
    return;
  }
  const engines = ENGINE_MATRIX.filter((e) => ids.includes(e.id));
  const missing = engines.filter((e) => !distributionPresent(e.product, e.version));
  if (missing.length > 0)
    throw new Error(
      `search engine distributions missing: ${missing.map((e) => `${e.product} ${e.version}`).join(', ')}; ` +
        `fetch them with \`${FETCH_COMMAND}\` (or limit the matrix with TEST_ENGINES=…)`,
    );
  const results = await Promise.allSettled(engines.map((e) => startEngine(e)));
  const servers = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  // Even when one failed, the others are recorded so the caller's teardown stops them.
  process.env[SINK_TEST_ENGINES] = JSON.stringify(servers);
  const failures = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failures.length > 0)
    throw new Error(
      failures.map((f) => (f.reason instanceof Error ? f.reason.message : String(f.reason))).join('\n\n'),
    );
}

async function startEngine(engine: (typeof ENGINE_MATRIX)[number]): Promise<EngineServer> {
  const dir = engineStackDir(engine.id);
  const started = Date.now();
  process.stderr.write(`[global-setup] starting ${engine.id} (${engine.product} ${engine.version}) in ${dir}\n`);
  let output: string;
  try {
    output = await devStackAsync(
      ['up', 'es'],
      dir,
      {
        ENGINE: engine.product,
        ...(engine.product === 'elasticsearch' ? { ES_VERSION: engine.version } : { OS_VERSION: engine.version }),
        ES_PORT: 'auto',
        ES_HEAP: ENGINE_HEAP,
        ES_START_TIMEOUT: String(START_TIMEOUT_S),
      },
      DEV_STACK_TIMEOUT_MS,
    );
  } catch (err) {
    // A node that started but never became healthy may still run: teardown stops it.
    globalThis.__REDIS_ES_SYNC_TEST_ENGINES_STARTED__?.push(dir);
    throw err;
  }
  if (!output.includes('already running')) globalThis.__REDIS_ES_SYNC_TEST_ENGINES_STARTED__?.push(dir);
  const url = readStackEnv(dir).ELASTICSEARCH_URL;
  if (url === undefined) throw new Error(`${dir}/env has no ELASTICSEARCH_URL after dev-stack.sh up es:\n${output}`);
  const server: EngineServer = { ...engine, url, pid: enginePid(dir, engine.product) };
  process.stderr.write(`[global-setup] ${engine.id} at ${url} (${((Date.now() - started) / 1000).toFixed(1)}s)\n`);
  return server;
}
