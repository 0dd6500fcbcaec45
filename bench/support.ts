import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@elastic/elasticsearch';
import { Redis } from 'ioredis';
import { stringify } from 'yaml';
import { ConfigSchema, type ConfigInput } from '../producers/capture/registry';
import { REPO_ROOT } from '../test/support/dev-stack';
import { SyncQueues, unfinishedJobs } from '../shared/core/queue';
import { openSearchEngine } from './baseline-opensearch';
import { BULK_HELPER, type BaselineDocument, type EngineClient, type EngineProduct } from './engine';

/** Where the benchmark's servers are, and their processes: to pause Elasticsearch and to count CPU time. */
export interface BenchEnv {
  sourceUrl: string;
  queueUrl: string;
  /** The search engine's URL (Elasticsearch or OpenSearch: the tool detects which). */
  esUrl: string;
  engine: EngineProduct;
  pids: { es: number; source: number; queue: number };
}

const CLI = join(REPO_ROOT, 'dist', 'cli', 'main.js');

/** The configuration every process of one scenario shares. */
export function benchConfig(env: BenchEnv, index: string, extra: Partial<ConfigInput> = {}): ConfigInput {
  return {
    logLevel: 'info',
    redis: { url: env.sourceUrl },
    queue: { url: env.queueUrl, keepCompleted: 0 },
    elasticsearch: { url: env.esUrl },
    mapping: { defaultIndex: index },
    ...extra,
    producer: { reconcileIntervalMs: 0, ...extra.producer },
  };
}

export interface CliProcess {
  child: ChildProcess;
  output(): string;
  /** SIGTERM, then wait for the exit. */
  stop(): Promise<void>;
}

/**
 * A `redis-es-sync <args>` process with `input` as its config file; `cli` is another build's
 * `dist/cli/main.js` when a baseline revision runs beside this one.
 */
export function startCli(input: ConfigInput, args: string[], nodeArgs: string[] = [], cli = CLI): CliProcess {
  if (!existsSync(cli)) throw new Error(`${cli} is missing: run npm run build first`);
  const file = join(mkdtempSync(join(tmpdir(), 'res-bench-')), 'config.yml');
  writeFileSync(file, stringify(input));
  // Only the file configures it: variables such as ELASTICSEARCH_URL in our own environment would win over it.
  const child = spawn(process.execPath, [...nodeArgs, cli, '--config', file, ...args], {
    env: { PATH: process.env.PATH ?? '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const keep = (d: Buffer): void => {
    out = (out + d.toString()).slice(-20000);
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  return {
    child,
    output: () => out,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const done = new Promise<void>((r) => child.once('exit', () => r()));
      child.kill('SIGTERM');
      await done;
    },
  };
}

/** Resolves once the process has printed `text` (its start-up line), or rejects when it exits first. */
export async function waitForOutput(proc: CliProcess, text: string, timeoutMs = 60000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!proc.output().includes(text)) {
    if (proc.child.exitCode !== null)
      throw new Error(`process exited before printing ${JSON.stringify(text)}:\n${proc.output()}`);
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${JSON.stringify(text)}:\n${proc.output()}`);
    await sleep(20);
  }
}

/** CPU seconds (user + system) a process has used so far (Linux /proc), or 0 when it is gone. */
export function cpuSeconds(pid: number): number {
  try {
    // After the `(comm) ` field; a process that is gone throws (caught below).
    const fields = (readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1] ?? '').split(' ');
    return (Number(fields[11] ?? 0) + Number(fields[12] ?? 0)) / 100;
  } catch {
    return 0;
  }
}

/** CPU seconds each named process uses between the call and the returned function's call. */
export function cpuMeter(pids: Record<string, number>): () => Record<string, number> {
  const start = Object.fromEntries(Object.entries(pids).map(([name, pid]) => [name, cpuSeconds(pid)]));
  return () =>
    Object.fromEntries(Object.entries(pids).map(([name, pid]) => [name, cpuSeconds(pid) - (start[name] ?? 0)]));
}

/** Resident memory of a process in bytes (Linux /proc), or 0 when it is gone. */
export function rssBytes(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

export interface Connections {
  source: Redis;
  queueRedis: Redis;
  /**
   * The harness's own client, not the sink port: the baselines (a bulk loader, the probes that
   * read documents back, index stats) measure the engine itself; the pipeline under test runs in
   * the tool's own processes, through the port.
   */
  es: Client;
  /** The same for either engine, through its own client: what the snapshot and live scenarios use. */
  engine: EngineClient;
  queue: SyncQueues;
  close(): Promise<void>;
}

export function connect(env: BenchEnv, queueName = 'changes', prefix = 'redis-es-sync'): Connections {
  const source = new Redis(env.sourceUrl);
  const queueRedis = new Redis(env.queueUrl, { maxRetriesPerRequest: null });
  const es = new Client({ node: env.esUrl, requestTimeout: 120000 });
  const engine = env.engine === 'opensearch' ? openSearchEngine(env.esUrl) : elasticsearchEngine(es);
  const config = ConfigSchema.parse({
    redis: { url: env.sourceUrl },
    queue: { url: env.queueUrl, name: queueName, prefix },
    elasticsearch: { url: env.esUrl },
  });
  const queue = SyncQueues.create(config, queueRedis);
  return {
    source,
    queueRedis,
    // The scenarios written against Elasticsearch alone (hot keys, memory, search) run on it only.
    get es(): Client {
      if (env.engine !== 'elasticsearch')
        throw new Error(`this scenario runs against Elasticsearch only, not ${env.engine}`);
      return es;
    },
    engine,
    queue,
    async close() {
      await queue.close();
      source.disconnect();
      queueRedis.disconnect();
      await engine.close();
      await es.close();
    },
  };
}

/** Polls until the queue has nothing left to do; a failed job makes the measurement void. */
export async function drained(queue: SyncQueues, timeoutMs: number, everyMs = 20): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while ((await unfinishedJobs(queue)) > 0) {
    if (Date.now() > deadline) throw new Error(`queue not drained after ${timeoutMs} ms`);
    await sleep(everyMs);
  }
  const failed = (await Promise.all(queue.partitions.map((q) => q.getFailed(0, 0)))).flat();
  const [first] = failed;
  if (first) throw new Error(`jobs failed, e.g. ${first.id}: ${first.failedReason}`);
}

/** The pid of a started child: spawn() leaves it undefined only when the start failed, which throws earlier. */
export function pidOf(proc: CliProcess): number {
  const pid = proc.child.pid;
  if (pid === undefined) throw new Error(`child process has no pid (it did not start):\n${proc.output()}`);
  return pid;
}

/** `items[i]` for an index computed from the array itself (modulo, search, shuffle): a miss is a bug in the bench. */
export function itemAt<T>(items: readonly T[], i: number): T {
  const item = items[i];
  if (item === undefined) throw new Error(`index ${i} is outside the ${items.length} items`);
  return item;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return itemAt(sorted, Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)));
}

/** Starts from an empty source, an empty queue and none of the scenario's indices. */
export async function resetServers(c: Connections, indexPattern: string): Promise<void> {
  await c.source.flushall();
  await c.queueRedis.flushall();
  await c.engine.deleteIndices(indexPattern);
}

/** The harness's Elasticsearch client behind the interface both engines share. */
function elasticsearchEngine(es: Client): EngineClient {
  return {
    product: 'elasticsearch',
    async deleteIndices(pattern) {
      await es.indices.delete({
        index: pattern,
        allow_no_indices: true,
        ignore_unavailable: true,
        expand_wildcards: 'all',
      });
    },
    async createIndex(index, settings, mappings) {
      await es.indices.create({ index, settings, mappings });
    },
    async refresh(index) {
      await es.indices.refresh({ index });
    },
    async count(index) {
      return (await es.count({ index })).count;
    },
    async indexOne(index, id, document) {
      await es.index({ index, id, document });
    },
    async seqOf(index, ids) {
      const res = await es.mget<{ value?: { seq?: string } }>({
        index,
        ids: [...ids],
        _source_includes: ['value.seq'],
      });
      return res.docs.map((d) => ('found' in d && d.found ? Number(d._source?.value?.seq ?? 0) : 0));
    },
    async bulkHelper(index, docs) {
      const stats = await es.helpers.bulk<BaselineDocument>({
        datasource: docs[Symbol.asyncIterator](),
        onDocument: (d) => [{ index: { _index: index, _id: d.id } }, d.doc],
        ...BULK_HELPER,
      });
      return stats.successful;
    },
    async close() {
      // The client is the connection's `es`, closed with it.
    },
  };
}
