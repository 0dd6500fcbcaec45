import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { ChangeSink } from '../producers/change-sink';
import { snapshot } from '../producers/snapshot';
import { readKeyStates, type PresentKeyState } from '../shared/core/key-state';
import { createLogger } from '../shared/platform/logger';
import { buildDocument } from '../shared/core/mapping/document';
import { indexBody } from '../shared/sink/indices';
import { KeyRouter } from '../shared/core/mapping/router';
import { ConfigSchema, type SyncConfig } from '../producers/capture/registry';
import { RedisDbPool } from '../shared/platform/redis';
import { VersionCounter, versionKey } from '../shared/core/versions';
import { sampleKey, sampleState, seedKeys } from './data';
import type { BaselineDocument } from './engine';
import { summarizeProfile, type ProfileShare } from './profile';
import {
  benchConfig,
  connect,
  cpuMeter,
  drained,
  itemAt,
  pidOf,
  resetServers,
  startCli,
  waitForOutput,
  type BenchEnv,
  type Connections,
} from './support';

/** The 1-minute load average sampled every second during one run: how busy the machine was. */
export interface RunLoad {
  max: number;
  mean: number;
}

export interface SnapshotRound {
  /** The tool: SCAN → BullMQ → worker process → _bulk, with external versions. */
  pipelineKeysPerSec: number;
  /** The limit: the same documents built in memory, sent with the client's bulk helper. */
  bulkHelperDocsPerSec: number;
  /**
   * Elastic's Redis connector's method: SCAN, then per key TYPE, its read and MEMORY USAGE as
   * sequential round trips, documents sent in bulks of 500; on the first `connectorKeys` keys.
   */
  connectorKeysPerSec: number;
  /** CPU microseconds per key of each process during the pipeline run: where the time goes. */
  pipelineCpuUsPerKey: Record<string, number>;
  /** The same for the bulk-helper run (Elasticsearch and the process building the documents). */
  bulkHelperCpuUsPerKey: Record<string, number>;
  /** The same for the connector run (Elasticsearch, source Redis, the harness doing the reads). */
  connectorCpuUsPerKey: Record<string, number>;
  load: { pipeline: RunLoad; bulkHelper: RunLoad; connector: RunLoad };
}

export interface SnapshotResult {
  keys: number;
  /** Each round runs the three methods on fresh indices, their order rotated every round. */
  rounds: SnapshotRound[];
  connectorKeys: number;
  /** What most teams write first: SCAN, then one read and one index request per key (once). */
  naiveKeysPerSec: number;
  naiveKeys: number;
}

const INDEX = 'bench-snapshot';

/** Samples the 1-minute load average every second until the returned function is called. */
function loadMeter(): () => RunLoad {
  const samples = [loadavg()[0] ?? NaN];
  const timer = setInterval(() => samples.push(loadavg()[0] ?? NaN), 1000);
  timer.unref();
  return () => {
    clearInterval(timer);
    samples.push(loadavg()[0] ?? NaN);
    return { max: Math.max(...samples), mean: samples.reduce((a, b) => a + b, 0) / samples.length };
  };
}

/** `run` with the machine's load average recorded while it runs. */
async function withLoad<T>(run: () => Promise<T>): Promise<{ value: T; load: RunLoad }> {
  const stop = loadMeter();
  try {
    const value = await run();
    return { value, load: stop() };
  } catch (err) {
    stop();
    throw err;
  }
}

/**
 * Snapshot throughput of `keys` mixed keys against the baselines, on the same data, interleaved:
 * each round runs the bulk helper, the pipeline and the connector method, each into a fresh
 * index, their order rotated every round, so a drift in the machine's speed hits all alike.
 * BENCHMARKS.md quotes the median of the rounds' ratios with their range.
 */
export async function snapshotScenario(
  env: BenchEnv,
  keys: number,
  sizes: { rounds: number; connectorKeys: number; naiveKeys: number },
): Promise<SnapshotResult> {
  const c = connect(env);
  try {
    const fresh = await seededRounds(env, c, keys);
    const connectorKeys = Math.min(keys, sizes.connectorKeys);
    const rounds: SnapshotRound[] = [];
    for (let r = 0; r < sizes.rounds; r++) {
      let bulk: { docsPerSec: number; cpuUsPerKey: Record<string, number>; load: RunLoad } | undefined;
      let pipeline: { keysPerSec: number; cpuUsPerKey: Record<string, number>; load: RunLoad } | undefined;
      let connector: { keysPerSec: number; cpuUsPerKey: Record<string, number>; load: RunLoad } | undefined;
      const methods = [
        async (): Promise<void> => {
          await fresh('bulk');
          const meter = cpuMeter({ elasticsearch: env.pids.es, harness: process.pid });
          const { value, load } = await withLoad(() => bulkHelperBaseline(c, keys));
          bulk = { docsPerSec: value, cpuUsPerKey: perKey(meter(), keys), load };
        },
        async (): Promise<void> => {
          await fresh('pipeline');
          const { value, load } = await withLoad(() => pipelineRun(env, c, keys));
          pipeline = { ...value, load };
        },
        async (): Promise<void> => {
          await fresh('connector');
          const meter = cpuMeter({ elasticsearch: env.pids.es, 'source redis': env.pids.source, harness: process.pid });
          const { value, load } = await withLoad(() => connectorBaseline(c, connectorKeys));
          connector = { keysPerSec: value, cpuUsPerKey: perKey(meter(), connectorKeys), load };
        },
      ];
      for (let m = 0; m < methods.length; m++) await itemAt(methods, (m + r) % methods.length)();
      if (!bulk || !pipeline || !connector) throw new Error('a snapshot round did not run all three methods');
      rounds.push({
        pipelineKeysPerSec: pipeline.keysPerSec,
        bulkHelperDocsPerSec: bulk.docsPerSec,
        connectorKeysPerSec: connector.keysPerSec,
        pipelineCpuUsPerKey: pipeline.cpuUsPerKey,
        bulkHelperCpuUsPerKey: bulk.cpuUsPerKey,
        connectorCpuUsPerKey: connector.cpuUsPerKey,
        load: { pipeline: pipeline.load, bulkHelper: bulk.load, connector: connector.load },
      });
    }
    await fresh('naive');
    const naiveKeys = Math.min(keys, sizes.naiveKeys);
    const naiveKeysPerSec = await naiveBaseline(c, naiveKeys);
    return { keys, rounds, connectorKeys, naiveKeysPerSec, naiveKeys };
  } finally {
    await c.close();
  }
}

async function bulkHelperBaseline(c: Connections, keys: number): Promise<number> {
  const router = KeyRouter.fromConfig(ConfigSchema.shape.mapping.parse({ defaultIndex: `${INDEX}-bulk` }));
  const started = performance.now();
  const successful = await c.engine.bulkHelper(
    `${INDEX}-bulk`,
    (async function* () {
      for (let i = 0; i < keys; i++) {
        const sample = sampleKey(i);
        const route = router.route(0, sample.key);
        const doc = route && buildDocument(route.shape, 0, sample.key, sampleState(sample));
        // The router has only a default index (every key maps) and sample states are never absent.
        if (!route || !doc) throw new Error(`bench key ${sample.key} has no document`);
        yield { id: route.id, doc };
      }
    })(),
  );
  const seconds = (performance.now() - started) / 1000;
  if (successful !== keys) throw new Error(`bulk helper indexed ${successful} of ${keys}`);
  return keys / seconds;
}

/** One of the scenario's indices, with the tool's settings and mapping and no replica (one node). */
async function createBenchIndex(c: Connections, name: string, mapping: SyncConfig['mapping']): Promise<void> {
  const body = indexBody(INDEX, mapping);
  await c.engine.createIndex(`${INDEX}-${name}`, { ...body.settings, number_of_replicas: 0 }, body.mappings);
}

/**
 * The worker's CPU profile during a snapshot of `keys` keys: where its own time goes. A run of
 * its own, since profiling slows the process it watches.
 */
export async function profileScenario(env: BenchEnv, keys: number): Promise<ProfileShare[]> {
  const c = connect(env);
  const dir = mkdtempSync(join(tmpdir(), 'res-bench-profile-'));
  try {
    await resetServers(c, `${INDEX}-*`);
    await seedKeys(c.source, 0, keys);
    await pipelineRun(env, c, keys, ['--cpu-prof', `--cpu-prof-dir=${dir}`]);
    return summarizeProfile(dir);
  } finally {
    await c.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

function perKey(cpuSeconds: Record<string, number>, keys: number): Record<string, number> {
  return Object.fromEntries(Object.entries(cpuSeconds).map(([name, s]) => [name, (s * 1e6) / keys]));
}

export interface BaselineComparison {
  keys: number;
  baseline: string;
  /** Keys per snapshot job each build enqueues with (its own `producer.snapshotBatchKeys` default). */
  batchKeys: { current: number; baseline: number };
  /**
   * Per round, keys or documents per second: this build, the baseline build, the bulk helper;
   * and the CPU µs per key of each build's own processes (worker, source Redis, queue Redis,
   * snapshot producer), the figure a busy machine moves least.
   */
  rounds: {
    current: number;
    baseline: number;
    bulkHelper: number;
    currentCpuUs: number;
    baselineCpuUs: number;
    currentByProcess: Record<string, number>;
    baselineByProcess: Record<string, number>;
  }[];
}

/**
 * This build's worker against another revision's, on the same data and servers, interleaved
 * (each round: the bulk helper, then both builds, their order swapped every round), so a drift
 * in the machine's speed hits both alike; BENCHMARKS.md quotes the median of each round's ratios.
 */
export async function baselineScenario(
  env: BenchEnv,
  keys: number,
  baseline: { name: string; cli: string; batchKeys: number },
  rounds: number,
): Promise<BaselineComparison> {
  const c = connect(env);
  try {
    const fresh = await seededRounds(env, c, keys);
    const out: BaselineComparison = {
      keys,
      baseline: baseline.name,
      batchKeys: { current: OWN_BATCH_KEYS, baseline: baseline.batchKeys },
      rounds: [],
    };
    for (let r = 0; r < rounds; r++) {
      await fresh('bulk');
      const bulkHelper = await bulkHelperBaseline(c, keys);
      interface Run {
        keysPerSec: number;
        cpuUs: number;
        byProcess: Record<string, number>;
      }
      const run = async (build?: { cli: string; batchKeys: number }): Promise<Run> => {
        await fresh('pipeline');
        const { keysPerSec, cpuUsPerKey } = await pipelineRun(env, c, keys, [], build?.cli, build?.batchKeys);
        const { elasticsearch: _es, ...tool } = cpuUsPerKey;
        return { keysPerSec, cpuUs: Object.values(tool).reduce((a, b) => a + b, 0), byProcess: cpuUsPerKey };
      };
      // A B, then B A: whichever runs second in a round does not always find Elasticsearch warmer.
      let current: Run;
      let base: Run;
      if (r % 2 === 0) {
        current = await run();
        base = await run(baseline);
      } else {
        base = await run(baseline);
        current = await run();
      }
      out.rounds.push({
        current: current.keysPerSec,
        baseline: base.keysPerSec,
        bulkHelper,
        currentCpuUs: current.cpuUs,
        baselineCpuUs: base.cpuUs,
        currentByProcess: current.byProcess,
        baselineByProcess: base.byProcess,
      });
    }
    return out;
  } finally {
    await c.close();
  }
}

/** This build's `producer.snapshotBatchKeys`: the snapshot the harness runs in process enqueues jobs as `snapshot` would. */
const OWN_BATCH_KEYS = ConfigSchema.shape.producer.parse({}).snapshotBatchKeys;

/** One worker process indexes what the snapshot enqueues; timed from the first SCAN to an empty queue. */
async function pipelineRun(
  env: BenchEnv,
  c: Connections,
  keys: number,
  workerNodeArgs: string[] = [],
  cli?: string,
  /** Keys per snapshot job: the default of the build whose worker runs (this one's unless told). */
  batchKeys = OWN_BATCH_KEYS,
): Promise<{ keysPerSec: number; cpuUsPerKey: Record<string, number> }> {
  const input = benchConfig(env, `${INDEX}-pipeline`);
  const worker = startCli(input, ['worker'], workerNodeArgs, cli);
  const source = new RedisDbPool(env.sourceUrl, 'bench-snapshot');
  try {
    await waitForOutput(worker, 'worker started');
    const log = createLogger('warn');
    const sink = new ChangeSink(
      c.queue,
      new VersionCounter(c.queueRedis, versionKey('redis-es-sync')),
      { prefix: 'redis-es-sync', batch: 500, flushMs: 2, hotKeyWindowMs: 0 },
      log,
    );
    const meter = cpuMeter({
      elasticsearch: env.pids.es,
      worker: pidOf(worker),
      'source redis': env.pids.source,
      'queue redis': env.pids.queue,
    });
    const producer = cpuMeter({ 'snapshot producer': process.pid });
    const started = performance.now();
    const result = await snapshot(
      { source, queueRedis: c.queueRedis, sink, logger: log },
      {
        databases: [0],
        patterns: ['*'],
        scanCount: 1000,
        batchKeys,
        prefix: 'redis-es-sync',
        resume: false,
        src: 'snapshot',
      },
    );
    // The producer's work ends with snapshot(): from here this process only polls for an empty
    // queue, a harness's cost (50 polls a second) that would otherwise pass for the producer's.
    const producerCpu = producer();
    await drained(c.queue, 30 * 60_000);
    const seconds = (performance.now() - started) / 1000;
    const cpu = { ...meter(), ...producerCpu };
    if (result.keys !== keys) throw new Error(`snapshot enqueued ${result.keys} of ${keys} keys`);
    await c.engine.refresh(`${INDEX}-pipeline`);
    const count = await c.engine.count(`${INDEX}-pipeline`);
    if (count !== keys) throw new Error(`pipeline indexed ${count} of ${keys}`);
    return { keysPerSec: keys / seconds, cpuUsPerKey: perKey(cpu, keys) };
  } finally {
    await worker.stop();
    await source.close();
  }
}

/** SCAN, then for each key: TYPE + its read, and one index request, awaited one by one. */
async function naiveBaseline(c: Connections, limit: number): Promise<number> {
  const router = KeyRouter.fromConfig(ConfigSchema.shape.mapping.parse({ defaultIndex: `${INDEX}-naive` }));
  let done = 0;
  let cursor = '0';
  const started = performance.now();
  do {
    const [next, page] = await c.source.scan(cursor, 'COUNT', 1000);
    cursor = next;
    for (const key of page) {
      if (done >= limit) break;
      const [state] = await readKeyStates(c.source, [key]);
      if (!state?.exists) continue;
      const route = router.route(0, key);
      if (!route) continue; // a key the bench's default-index router does not map: none are seeded
      const doc = buildDocument(route.shape, 0, key, state);
      if (!doc) continue; // the key's state exists (checked above), so it has a document
      await c.engine.indexOne(route.index, route.id, doc);
      done++;
    }
  } while (cursor !== '0' && done < limit);
  return done / ((performance.now() - started) / 1000);
}

/** Documents per bulk request in Elastic's Redis connector. */
const CONNECTOR_BULK_DOCS = 500;

/**
 * The method of Elastic's Redis connector: SCAN, then for each key TYPE, the read its type
 * needs and MEMORY USAGE, each a round trip awaited in turn (no pipelining, no atomicity), and
 * the documents sent in bulks of 500, one at a time. The documents are the tool's own, so the
 * engine indexes the same bytes in every method.
 */
async function connectorBaseline(c: Connections, limit: number): Promise<number> {
  const index = `${INDEX}-connector`;
  const router = KeyRouter.fromConfig(ConfigSchema.shape.mapping.parse({ defaultIndex: index }));
  let batch: BaselineDocument[] = [];
  const flush = async (): Promise<void> => {
    const docs = batch;
    batch = [];
    const indexed = await c.engine.bulkHelper(
      index,
      (async function* () {
        yield* docs;
      })(),
    );
    if (indexed !== docs.length) throw new Error(`connector bulk indexed ${indexed} of ${docs.length}`);
  };
  let done = 0;
  let cursor = '0';
  const started = performance.now();
  do {
    const [next, page] = await c.source.scanBuffer(cursor, 'COUNT', 1000);
    cursor = next.toString();
    for (const key of page) {
      if (done >= limit) break;
      const state = await readOneByOne(c.source, key);
      await c.source.memory('USAGE', key);
      const name = key.toString('utf8');
      const route = router.route(0, name);
      // Every seeded key exists, has a supported type and maps to the default index.
      if (!state || !route) throw new Error(`bench key ${name} has no document`);
      const doc = buildDocument(route.shape, 0, name, state);
      if (!doc) throw new Error(`bench key ${name} has no document`);
      batch.push({ id: route.id, doc });
      done++;
      if (batch.length >= CONNECTOR_BULK_DOCS) await flush();
    }
  } while (cursor !== '0' && done < limit);
  if (batch.length > 0) await flush();
  return done / ((performance.now() - started) / 1000);
}

/** TYPE, then the read of that type: two round trips, as the connector does them. */
async function readOneByOne(redis: Connections['source'], key: Buffer): Promise<PresentKeyState | undefined> {
  const type = await redis.type(key);
  switch (type) {
    case 'string': {
      const value = await redis.getBuffer(key);
      return value ? { exists: true, type, value } : undefined;
    }
    case 'hash': {
      const flat = await redis.hgetallBuffer(key);
      return {
        exists: true,
        type,
        value: Object.entries(flat).map(([name, value]) => ({ name: Buffer.from(name), value })),
      };
    }
    case 'list':
      return { exists: true, type, value: await redis.lrangeBuffer(key, 0, -1) };
    case 'set':
      return { exists: true, type, value: await redis.smembersBuffer(key) };
    case 'zset': {
      const flat = await redis.zrangeBuffer(key, 0, -1, 'WITHSCORES');
      const value = [];
      for (let i = 1; i < flat.length; i += 2)
        value.push({ member: itemAt(flat, i - 1), score: itemAt(flat, i).toString('latin1') });
      return { exists: true, type, value };
    }
    default:
      return undefined;
  }
}

export interface EngineSnapshot {
  keys: number;
  /**
   * Per round: the pipeline's keys/s, the engine's bulk limit (its own client's bulk helper)
   * in docs/s, and the CPU µs per key of each process during the pipeline run (the engine's
   * included, under `engine`).
   */
  rounds: { pipeline: number; bulkHelper: number; cpuUsPerKey: Record<string, number> }[];
}

/**
 * Empty servers with `keys` keys seeded; answers the function that gives a run (a round, or
 * one of the compared methods) its own fresh index (`<INDEX>-<name>`).
 */
async function seededRounds(env: BenchEnv, c: Connections, keys: number): Promise<(name: string) => Promise<void>> {
  await resetServers(c, `${INDEX}-*`);
  await seedKeys(c.source, 0, keys);
  const mapping = ConfigSchema.parse({
    redis: { url: env.sourceUrl },
    elasticsearch: { url: env.esUrl },
    queue: { url: env.queueUrl },
    mapping: { defaultIndex: INDEX },
  }).mapping;
  return async (name) => {
    await c.engine.deleteIndices(`${INDEX}-${name}`);
    await createBenchIndex(c, name, mapping);
  };
}

/**
 * The pipeline against the engine's own bulk limit on the same `keys` keys, interleaved: each
 * round runs both, their order swapped every round, so a drift in the machine's speed hits
 * both alike; BENCHMARKS.md quotes the median of each round's ratio.
 */
export async function engineSnapshotScenario(env: BenchEnv, keys: number, rounds: number): Promise<EngineSnapshot> {
  const c = connect(env);
  try {
    const fresh = await seededRounds(env, c, keys);
    const out: EngineSnapshot = { keys, rounds: [] };
    for (let r = 0; r < rounds; r++) {
      const bulk = async (): Promise<number> => {
        await fresh('bulk');
        return bulkHelperBaseline(c, keys);
      };
      const pipeline = async (): Promise<{ keysPerSec: number; cpuUsPerKey: Record<string, number> }> => {
        await fresh('pipeline');
        const run = await pipelineRun(env, c, keys);
        const { elasticsearch: engineCpu = 0, ...tool } = run.cpuUsPerKey;
        return { keysPerSec: run.keysPerSec, cpuUsPerKey: { ...tool, engine: engineCpu } };
      };
      let bulkHelper: number;
      let run: Awaited<ReturnType<typeof pipeline>>;
      if (r % 2 === 0) {
        bulkHelper = await bulk();
        run = await pipeline();
      } else {
        run = await pipeline();
        bulkHelper = await bulk();
      }
      out.rounds.push({ pipeline: run.keysPerSec, bulkHelper, cpuUsPerKey: run.cpuUsPerKey });
    }
    return out;
  } finally {
    await c.close();
  }
}
