import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { stringify } from 'yaml';
import { buildContext, type AppContext } from '../../cli/context';
import { startService, type RunningService, type ServiceParts } from '../../cli/service';
import type { LoadedConfig } from '../../shared/platform/config/load';
import { ConfigSchema, type ConfigInput, type SyncConfig } from '../../producers/capture/registry';
import { createLogger } from '../../shared/platform/logger';
import { formatReport, inSync, verify, type VerifyReport } from '../../features/maintenance/verify';
import { esUrl, uniqueIndex } from './elasticsearch';
import { startRedis, type RedisServerHandle } from './redis-server';

export interface TestServers {
  source: RedisServerHandle;
  queue: RedisServerHandle;
  index: string;
  stop(): Promise<void>;
}

/**
 * A source Redis (with keyspace notifications unless `notify: false`), a queue Redis, and an
 * index name of the test's own.
 */
export async function startServers(
  indexPrefix: string,
  opts: { notify?: boolean; sourceArgs?: string[] } = {},
): Promise<TestServers> {
  const [source, queue] = await Promise.all([
    startRedis({ notifyKeyspaceEvents: opts.notify === false ? undefined : 'KEA', args: opts.sourceArgs }),
    startRedis(),
  ]);
  return {
    source,
    queue,
    index: uniqueIndex(indexPrefix),
    async stop() {
      await Promise.all([source.stop(), queue.stop()]);
    },
  };
}

/** Settings small enough for tests to see crashes and retries quickly. */
export function testConfigInput(servers: TestServers, extra: Partial<ConfigInput> = {}): ConfigInput {
  return {
    logLevel: (process.env.TEST_LOG_LEVEL as ConfigInput['logLevel']) ?? 'silent',
    redis: { url: servers.source.url },
    queue: { url: servers.queue.url },
    elasticsearch: { url: esUrl() },
    mapping: { defaultIndex: servers.index },
    ...extra,
    worker: { lockDurationMs: 4000, stalledIntervalMs: 1000, retryBaseMs: 50, retryMaxMs: 1000, ...extra.worker },
    // Tests flush and delete whole data sets on purpose; the guard has tests of its own (deletion-guard.test.ts).
    producer: { reconcileIntervalMs: 0, deletionGuard: { maxShare: 1 }, ...extra.producer },
  };
}

export function loadedConfig(input: ConfigInput): LoadedConfig<SyncConfig> {
  return { config: ConfigSchema.parse(input), baseDir: process.cwd() };
}

export interface TestPipeline {
  ctx: AppContext;
  service: RunningService;
  stop(): Promise<void>;
}

/** The service in this process (producer, worker or both), as `run` starts it. */
export async function startPipeline(
  input: ConfigInput,
  parts: ServiceParts = { producer: true, worker: true },
): Promise<TestPipeline> {
  const loaded = loadedConfig(input);
  const ctx = buildContext(loaded, createLogger(loaded.config.logLevel));
  let service: RunningService;
  try {
    service = await startService(ctx, parts);
  } catch (err) {
    await ctx.close();
    throw err;
  }
  return { ctx, service, stop: () => service.stop() };
}

/** Polls until `check` holds; fails with `what` and the last value seen. */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T>,
  check: (v: T) => boolean,
  timeoutMs = 30000,
  everyMs = 100,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: T = await probe();
  while (!check(last)) {
    if (Date.now() > deadline)
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}; last: ${JSON.stringify(last)?.slice(0, 500)}`,
      );
    await new Promise((r) => setTimeout(r, everyMs));
    last = await probe();
  }
  return last;
}

export function verifyNow(ctx: AppContext): Promise<VerifyReport> {
  const { config } = ctx;
  return verify(
    { sink: ctx.sink, source: ctx.source, router: ctx.router },
    {
      databases: config.redis.databases,
      patterns: config.redis.patterns,
      prefix: config.queue.prefix,
      scanCount: 1000,
      settleMs: 0,
    },
  );
}

/**
 * Waits until verify finds Redis and Elasticsearch identical. A verify that throws while a
 * Cluster's topology moves (its scan on a master that just failed) counts as not in sync yet
 * and is run again; its error is what a timeout reports. (A master demoted by a failover keeps
 * its connection: ClusterSource.masters.)
 */
export async function waitInSync(ctx: AppContext, timeoutMs = 60000): Promise<VerifyReport> {
  const attempt = (): Promise<VerifyReport | { error: string }> =>
    verifyNow(ctx).catch((err: unknown) => ({ error: err instanceof Error ? err.message : String(err) }));
  const last = await waitFor(
    'Elasticsearch to match Redis',
    attempt,
    (r) => !('error' in r) && inSync(r),
    timeoutMs,
    250,
  ).catch((err: unknown) => {
    throw new Error(err instanceof Error ? err.message : String(err));
  });
  if ('error' in last) throw new Error(last.error);
  return last;
}

export { formatReport };

/** Realtime GET of one document's source, or undefined when absent. */
export async function getDoc(ctx: AppContext, index: string, id: string): Promise<Record<string, unknown> | undefined> {
  const [doc] = await ctx.sink.getDocuments(index, [id]);
  return doc;
}

const CLI = resolve(__dirname, '../../dist/cli/main.js');

/** A CLI process (`worker`, `producer`, `verify`…) with the test's configuration in a temp file. */
export function spawnCli(
  input: ConfigInput,
  args: string[],
  opts: { env?: Record<string, string> } = {},
): ChildProcess & { output: () => string } {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run npm run build first (npm test does)`);
  const dir = mkdtempSync(join(tmpdir(), 'res-cli-'));
  const file = join(dir, 'config.yml');
  writeFileSync(file, stringify(input));
  const child = spawn(process.execPath, [CLI, '--config', file, ...args], {
    env: { PATH: process.env.PATH ?? '', ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  return Object.assign(child, { output: () => out });
}

export function exited(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((r) => child.once('exit', (code) => r(code)));
}
