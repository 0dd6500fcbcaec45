import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { REPO_ROOT } from './dev-stack';

/**
 * The search engines every sink must work with, each a real server that jest's global set-up
 * starts once per run (test/support/global-setup.ts), next to the default Elasticsearch of
 * ELASTICSEARCH_URL that the other integration tests use.
 */
export const ENGINE_MATRIX = [
  { id: 'elasticsearch-8', product: 'elasticsearch', version: '8.19.9' },
  { id: 'elasticsearch-9', product: 'elasticsearch', version: '9.2.0' },
  { id: 'opensearch-2', product: 'opensearch', version: '2.19.6' },
  { id: 'opensearch-3', product: 'opensearch', version: '3.6.0' },
] as const;

export type EngineId = (typeof ENGINE_MATRIX)[number]['id'];
export type EngineProduct = 'elasticsearch' | 'opensearch';
export const ENGINE_IDS: readonly EngineId[] = ENGINE_MATRIX.map((e) => e.id);

/** One running engine, as the global set-up hands it to the tests in SINK_TEST_ENGINES. */
export interface EngineServer {
  id: EngineId;
  product: EngineProduct;
  version: string;
  url: string;
  /** The engine's JVM. */
  pid: number;
}

export interface TestEngine extends EngineServer {
  /** Freezes the JVM (SIGSTOP): connections stay open and nothing answers, as in a real outage. */
  pause(): void;
  /** Lets a paused JVM run again (SIGCONT). */
  resume(): void;
}

export const SINK_TEST_ENGINES = 'SINK_TEST_ENGINES';
/** The command that downloads every distribution the matrix needs. */
export const FETCH_COMMAND = 'bash scripts/dev-stack.sh fetch';

const EngineServers = z.array(
  z
    .object({
      id: z.enum(ENGINE_IDS as [EngineId, ...EngineId[]]),
      product: z.enum(['elasticsearch', 'opensearch']),
      version: z.string().min(1),
      url: z.url(),
      pid: z.number().int().positive(),
    })
    .strict(),
);

/** The servers in a SINK_TEST_ENGINES value; throws on anything else. */
export function parseEngineServers(json: string): EngineServer[] {
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch (err) {
    throw new Error(`${SINK_TEST_ENGINES} is not JSON: ${(err as Error).message}`, { cause: err });
  }
  const parsed = EngineServers.safeParse(value);
  if (!parsed.success)
    throw new Error(`${SINK_TEST_ENGINES} is not [{id, product, version, url, pid}]: ${parsed.error.message}`);
  return parsed.data;
}

/**
 * The engine ids TEST_ENGINES asks for: a comma-separated list (`elasticsearch-8,opensearch-2`),
 * `none` for runs of tests that need no engine of the matrix, all of them when unset or empty.
 */
export function requestedEngineIds(value = process.env.TEST_ENGINES): EngineId[] {
  const raw = (value ?? '').trim();
  if (raw === '') return [...ENGINE_IDS];
  if (raw === 'none') return [];
  const ids = raw.split(',').map((s) => s.trim());
  const unknown = ids.filter((id) => !(ENGINE_IDS as readonly string[]).includes(id));
  if (unknown.length > 0)
    throw new Error(`TEST_ENGINES: unknown engine ${unknown.join(', ')} (known: ${ENGINE_IDS.join(', ')}, or none)`);
  return ENGINE_IDS.filter((id) => ids.includes(id));
}

/** Where dev-stack.sh keeps the state of one matrix engine (relative to the repository). */
export function engineStackDir(id: EngineId): string {
  return join('.stack-test', 'engines', id);
}

/** Whether `dev-stack.sh fetch` has unpacked this distribution into .cache/. */
export function distributionPresent(product: EngineProduct, version: string): boolean {
  return existsSync(join(REPO_ROOT, '.cache', product, `${product}-${version}`, 'bin', product));
}

/** The pid in the file dev-stack.sh wrote for the engine of `stackDir`. */
export function enginePid(stackDir: string, product: EngineProduct): number {
  const file = join(REPO_ROOT, stackDir, product, 'es.pid');
  const pid = Number(readFileSync(file, 'utf8').trim());
  if (!Number.isInteger(pid) || pid <= 0) throw new Error(`${file} holds no pid`);
  return pid;
}

function startedServers(): EngineServer[] {
  const json = process.env[SINK_TEST_ENGINES];
  if (json === undefined || json.trim() === '')
    throw new Error(
      `${SINK_TEST_ENGINES} is not set: run the engine tests through jest's integration project ` +
        `(its global set-up starts the engines), e.g. npx jest --selectProjects integration test/integration/engines`,
    );
  return parseEngineServers(json);
}

/** The ids of the engines this run started (or reused), in matrix order. */
export function testEngineIds(): EngineId[] {
  const started = startedServers().map((s) => s.id);
  return ENGINE_IDS.filter((id) => started.includes(id));
}

/** One engine of this run; throws, naming TEST_ENGINES, when the run did not start it. */
export function testEngine(id: EngineId): TestEngine {
  const server = startedServers().find((s) => s.id === id);
  if (server === undefined)
    throw new Error(
      `engine ${id} was not started in this run (TEST_ENGINES=${process.env.TEST_ENGINES ?? ''}): ` +
        `unset TEST_ENGINES or add ${id} to it`,
    );
  return {
    ...server,
    pause() {
      process.kill(server.pid, 'SIGSTOP');
    },
    resume() {
      process.kill(server.pid, 'SIGCONT');
    },
  };
}
