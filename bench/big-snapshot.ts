import { readdirSync, readFileSync, statfsSync, lstatSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { ConfigSchema, type ConfigInput } from '../producers/capture/registry';
import { buildDocument } from '../shared/core/mapping/document';
import { KeyRouter } from '../shared/core/mapping/router';
import { indexBody } from '../shared/sink/indices';
import { sampleKey, sampleState, seedKeys } from './data';
import type { RunLoad } from './snapshot';
import {
  benchConfig,
  connect,
  cpuSeconds,
  drained,
  pidOf,
  resetServers,
  rssBytes,
  sleep,
  startCli,
  waitForOutput,
  type BenchEnv,
  type CliProcess,
  type Connections,
} from './support';

const INDEX = 'bench-big';
/** The size issue 14 asks for; the sizing is extrapolated to it whatever size runs. */
export const TARGET_KEYS = 10_000_000;

export interface BigSnapshotOptions {
  keys: number;
  /** Keys the bytes per key are measured on (the first of the `keys`, seeded first). */
  probeKeys: number;
  /** The bench stack's state dir: where the servers keep their data. */
  stackDir: string;
  /** SCAN COUNT and keys per job of the producer (the tool's defaults unless a smoke run needs more pages). */
  scanCount?: number;
  batchKeys?: number;
}

export interface Sizing {
  probeKeys: number;
  /** Source Redis used_memory per key (INFO memory, before and after seeding the probe keys). */
  redisBytesPerKey: number;
  /** Elasticsearch primary store per document, flushed and merged to one segment. */
  esBytesPerKey: number;
  /** MemAvailable (/proc/meminfo) and the free disk under the stack dir, before seeding. */
  memAvailable: number;
  diskFree: number;
  memTotal: number;
}

/** Peak resident memory of each process during the run (VmRSS polled every 250 ms, VmHWM of the children). */
export interface PeakRss {
  producerBefore: number;
  producerAfter: number;
  worker: number;
  sourceRedis: number;
  queueRedis: number;
  elasticsearch: number;
}

export interface BigSnapshotResult {
  keys: number;
  sizing: Sizing;
  seedSeconds: number;
  /** From the first producer's start to every document indexed and the queue drained. */
  seconds: number;
  kill: {
    /** Seconds from the first producer's start to its SIGKILL, and to the resumed producer's start. */
    atSeconds: number;
    restartedAtSeconds: number;
    /** Share of the keyspace behind the saved SCAN cursor when the kill was sent (estimated from the cursor). */
    cursorShare: number;
    /** Documents Elasticsearch counted at the kill (refreshed). */
    indexedAtKill: number;
    /** The random delay between seeing the cursor past half and the kill, and the mean time of a SCAN page. */
    delayMs: number;
    pageMs: number;
  };
  /** Keys the first producer enqueued before its kill, and the resumed one after (its own report). */
  enqueuedBeforeKill: number;
  enqueuedByResume: number;
  resumeSeconds: number;
  /** Index operations Elasticsearch performed beyond one per key: keys enqueued twice (and indexed again). */
  duplicates: number;
  count: number;
  verify: { checked: number; missing: number; stale: number; extra: number; seconds: number; exitCode: number };
  peakRss: PeakRss;
  /** Peak used_memory of the queue Redis (INFO every second): the backlog of key-only jobs. */
  queuePeakBytes: number;
  /** At the end: source Redis used_memory, Elasticsearch primary store. */
  sourceBytes: number;
  esStoreBytes: number;
  /** Bytes under each server's data dir at the end. */
  disk: { sourceRedis: number; queueRedis: number; elasticsearch: number };
  /** CPU µs per key of each process over the whole run (both producers together). */
  cpuUsPerKey: Record<string, number>;
  load: RunLoad;
}

/**
 * A snapshot of `keys` mixed keys by a producer process and a worker process, the producer
 * SIGKILLed once the SCAN cursor it saved has passed half the keyspace and started again so
 * that it resumes from that cursor; done when Elasticsearch holds every key and the queue is
 * empty, then checked by `verify`. The sizing (bytes per key in Redis and Elasticsearch) is
 * measured first on `probeKeys` keys, and a size the machine cannot hold is refused.
 */
export async function bigSnapshotScenario(env: BenchEnv, opts: BigSnapshotOptions): Promise<BigSnapshotResult> {
  const c = connect(env);
  const procs: CliProcess[] = [];
  try {
    await resetServers(c, `${INDEX}*`);
    const probeKeys = Math.min(opts.probeKeys, opts.keys);
    const sizing = await measureSizing(c, probeKeys, opts.stackDir);
    refuseWhatDoesNotFit(sizing, opts.keys);

    const seedStarted = performance.now();
    await seedKeys(c.source, probeKeys, opts.keys - probeKeys, 5000);
    const seedSeconds = (performance.now() - seedStarted) / 1000;
    if ((await c.source.dbsize()) !== opts.keys) throw new Error(`seeded ${await c.source.dbsize()} of ${opts.keys}`);
    await createIndex(c, INDEX);

    const input: ConfigInput = benchConfig(env, INDEX, {
      producer: {
        reconcileIntervalMs: 0,
        ...(opts.scanCount ? { scanCount: opts.scanCount } : {}),
        ...(opts.batchKeys ? { snapshotBatchKeys: opts.batchKeys } : {}),
      },
    });
    const worker = startCli(input, ['worker']);
    procs.push(worker);
    await waitForOutput(worker, 'worker started');

    const sampler = new Sampler(env, c, pidOf(worker));
    const started = performance.now();
    const first = startCli(input, ['snapshot', '--restart']);
    procs.push(first);
    sampler.producer(first);
    const cursorsKey = 'redis-es-sync:cursors:snapshot';
    let share = 0;
    // Cursor saves seen, and when the first was: the mean time one SCAN page takes.
    let saves = 0;
    let firstSave = 0;
    let last = '';
    for (;;) {
      if (first.child.exitCode !== null)
        throw new Error(`the producer finished before half-way (saved cursor at ${share}):\n${first.output()}`);
      const cursors = await c.queueRedis.hgetall(cursorsKey);
      const seen = JSON.stringify(cursors);
      if (seen !== last && Object.keys(cursors).length > 0) {
        if (saves++ === 0) firstSave = performance.now();
        last = seen;
      }
      share = cursorShare(cursors, opts.keys);
      if (share >= 0.5) break;
      await sleep(5);
    }
    // Polling sees a cursor just after it was saved: killing then would always land at the
    // start of a page, the one point where nothing enqueued is unsaved. A random delay of up
    // to one page's time lands the kill anywhere in a page, as a real crash would.
    const pageMs = saves > 1 ? (performance.now() - firstSave) / (saves - 1) : 0;
    const killDelayMs = Math.random() * pageMs;
    await sleep(killDelayMs);
    const exited = new Promise<void>((r) => first.child.once('exit', () => r()));
    first.child.kill('SIGKILL');
    const atSeconds = (performance.now() - started) / 1000;
    await exited;
    const producerBefore = sampler.producerPeak();
    await c.engine.refresh(INDEX);
    const indexedAtKill = await c.engine.count(INDEX);

    // Restarted at once, as a supervisor would: it resumes from the cursors the killed one saved.
    const restartedAtSeconds = (performance.now() - started) / 1000;
    const second = startCli(input, ['snapshot']);
    procs.push(second);
    sampler.producer(second);
    const code = await new Promise<number | null>((r) => second.child.once('exit', r));
    const resumeSeconds = (performance.now() - started) / 1000 - restartedAtSeconds;
    if (code !== 0) throw new Error(`the resumed producer exited with ${code}:\n${second.output()}`);
    const producerAfter = sampler.producerPeak();
    const enqueuedByResume = enqueuedKeys(second.output());

    await drained(c.queue, 6 * 3600_000, 200);
    await c.engine.refresh(INDEX);
    const count = await c.engine.count(INDEX);
    const seconds = (performance.now() - started) / 1000;
    const sampled = sampler.stop();
    if (count !== opts.keys) throw new Error(`indexed ${count} of ${opts.keys} after the resume`);
    await worker.stop();

    const indexOps = await indexOperations(c, INDEX);
    const verifyStarted = performance.now();
    const verifier = startCli(input, ['verify', '--list', '5']);
    procs.push(verifier);
    const verifyCode = await new Promise<number | null>((r) => verifier.child.once('exit', r));
    const verify = parseVerify(verifier.output(), verifyCode ?? -1, (performance.now() - verifyStarted) / 1000);

    const queueRedisDir = join(opts.stackDir, 'queue-redis', 'data');
    return {
      keys: opts.keys,
      sizing,
      seedSeconds,
      seconds,
      kill: { atSeconds, restartedAtSeconds, cursorShare: share, indexedAtKill, delayMs: killDelayMs, pageMs },
      enqueuedBeforeKill: indexOps - enqueuedByResume,
      enqueuedByResume,
      resumeSeconds,
      duplicates: indexOps - opts.keys,
      count,
      verify,
      peakRss: { ...sampled.peaks, producerBefore, producerAfter },
      queuePeakBytes: sampled.queuePeakBytes,
      sourceBytes: await usedMemory(c.source),
      esStoreBytes: await storeBytes(c, INDEX),
      disk: {
        sourceRedis: dirBytes(join(opts.stackDir, 'redis', 'data')),
        queueRedis: dirBytes(queueRedisDir),
        elasticsearch: dirBytes(join(opts.stackDir, env.engine, 'data')),
      },
      cpuUsPerKey: Object.fromEntries(Object.entries(sampled.cpuSeconds).map(([p, s]) => [p, (s * 1e6) / opts.keys])),
      load: sampled.load,
    };
  } finally {
    for (const p of procs) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
    await c.close();
  }
}

/**
 * Seeds the first `probeKeys` keys and measures what they cost: source Redis used_memory, and
 * the Elasticsearch store of the same documents (bulk-loaded into an index of their own,
 * flushed and merged to one segment, then deleted).
 */
async function measureSizing(c: Connections, probeKeys: number, stackDir: string): Promise<Sizing> {
  const meminfo = readFileSync('/proc/meminfo', 'utf8');
  const kb = (field: string): number => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(meminfo)?.[1] ?? NaN) * 1024;
  const fs = statfsSync(stackDir);
  const before = await usedMemory(c.source);
  await seedKeys(c.source, 0, probeKeys, 5000);
  const redisBytesPerKey = ((await usedMemory(c.source)) - before) / probeKeys;

  const index = `${INDEX}-sizing`;
  await createIndex(c, index);
  const router = KeyRouter.fromConfig(ConfigSchema.shape.mapping.parse({ defaultIndex: index }));
  const indexed = await c.engine.bulkHelper(
    index,
    (async function* () {
      for (let i = 0; i < probeKeys; i++) {
        const sample = sampleKey(i);
        const route = router.route(0, sample.key);
        const doc = route && buildDocument(route.shape, 0, sample.key, sampleState(sample));
        if (!route || !doc) throw new Error(`bench key ${sample.key} has no document`);
        yield { id: route.id, doc };
      }
    })(),
  );
  if (indexed !== probeKeys) throw new Error(`sizing: indexed ${indexed} of ${probeKeys}`);
  await c.es.indices.flush({ index });
  await c.es.indices.forcemerge({ index, max_num_segments: 1 });
  const esBytesPerKey = (await storeBytes(c, index)) / probeKeys;
  await c.engine.deleteIndices(index);
  return {
    probeKeys,
    redisBytesPerKey,
    esBytesPerKey,
    memAvailable: kb('MemAvailable'),
    memTotal: kb('MemTotal'),
    diskFree: fs.bavail * fs.bsize,
  };
}

/**
 * Refuses a size whose source data would not leave room in memory (Redis holds it all, with
 * headroom for the queue's backlog and the processes), or whose index, twice over while
 * segments merge, would not fit on the disk.
 */
function refuseWhatDoesNotFit(s: Sizing, keys: number): void {
  const redis = s.redisBytesPerKey * keys;
  const es = s.esBytesPerKey * keys;
  if (redis > 0.6 * s.memAvailable)
    throw new Error(
      `${keys} keys need about ${gib(redis)} in the source Redis; ${gib(s.memAvailable)} is available: run fewer (--big-keys)`,
    );
  if (2 * es > 0.8 * s.diskFree)
    throw new Error(`${keys} documents need about ${gib(2 * es)} of disk while merging; ${gib(s.diskFree)} is free`);
}

const gib = (bytes: number): string => `${(bytes / 2 ** 30).toFixed(1)} GiB`;

/** The tool's own settings and mapping, no replica (one node). */
async function createIndex(c: Connections, name: string): Promise<void> {
  const mapping = ConfigSchema.shape.mapping.parse({ defaultIndex: name });
  const body = indexBody(name, mapping);
  await c.engine.createIndex(name, { ...body.settings, number_of_replicas: 0 }, body.mappings);
}

/**
 * The share of the keyspace behind a saved SCAN cursor. Redis SCAN visits the buckets of a
 * table of 2^k buckets in reverse-binary order, so the cursor's low k bits read backwards are
 * the buckets done out of 2^k; k is taken from the key count (the table after seeding).
 */
export function cursorShare(cursors: Record<string, string>, keys: number): number {
  const values = Object.values(cursors);
  if (values.length === 0) return 0;
  if (values.every((v) => v === 'done')) return 1;
  const bits = Math.max(1, Math.ceil(Math.log2(keys)));
  let share = 0;
  for (const v of values) {
    if (v === 'done') continue;
    const cursor = BigInt(v);
    let reversed = 0n;
    for (let b = 0; b < bits; b++) reversed = (reversed << 1n) | ((cursor >> BigInt(b)) & 1n);
    share = Math.max(share, Number(reversed) / 2 ** bits);
  }
  return share;
}

/** The keys a `snapshot` process reported enqueuing (its `snapshot enqueued` log line). */
function enqueuedKeys(output: string): number {
  for (const line of output.split('\n')) {
    if (!line.includes('"snapshot enqueued"')) continue;
    const parsed = JSON.parse(line) as { keys?: unknown };
    if (typeof parsed.keys === 'number') return parsed.keys;
  }
  throw new Error(`the resumed producer printed no "snapshot enqueued" line:\n${output}`);
}

function parseVerify(output: string, exitCode: number, seconds: number): BigSnapshotResult['verify'] {
  const m = /checked (\d+), missing (\d+), stale (\d+), extra (\d+)/.exec(output);
  if (!m) throw new Error(`verify printed no report (exit ${exitCode}):\n${output}`);
  const [checked, missing, stale, extra] = m.slice(1).map(Number) as [number, number, number, number];
  return { checked, missing, stale, extra, seconds, exitCode };
}

/** Index operations Elasticsearch performed on the index's primaries (a key indexed twice counts twice). */
async function indexOperations(c: Connections, index: string): Promise<number> {
  const stats = await c.es.indices.stats({ index, metric: 'indexing' });
  return stats._all.primaries?.indexing?.index_total ?? NaN;
}

async function storeBytes(c: Connections, index: string): Promise<number> {
  const stats = await c.es.indices.stats({ index, metric: 'store' });
  return stats._all.primaries?.store?.size_in_bytes ?? NaN;
}

async function usedMemory(redis: Connections['source']): Promise<number> {
  return Number(/used_memory:(\d+)/.exec(await redis.info('memory'))?.[1] ?? NaN);
}

/** Bytes of the files under `dir` (0 when it is missing). */
function dirBytes(dir: string): number {
  let total = 0;
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return 0;
  }
  for (const name of entries) {
    const path = join(dir, name);
    try {
      const st = lstatSync(path);
      total += st.isDirectory() ? dirBytes(path) : st.size;
    } catch {
      // A file a merge or rewrite removed between the listing and the stat.
    }
  }
  return total;
}

/** Peak resident memory of a process: its VmHWM, or 0 when it is gone. */
function hwmBytes(pid: number): number {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/**
 * Every 250 ms: each process's RSS (and the children's VmHWM, exact while they live), their
 * CPU seconds (kept per producer, since a killed one's /proc is gone), the 1-minute load
 * average; every second the queue Redis's used_memory.
 */
class Sampler {
  private readonly peaks = { worker: 0, sourceRedis: 0, queueRedis: 0, elasticsearch: 0 };
  private current: { pid: number; peak: number; cpu: number } | undefined;
  private producerCpu = 0;
  private readonly cpuStart: Record<string, number>;
  private readonly loads: number[] = [loadavg()[0] ?? NaN];
  private queuePeak = 0;
  private ticks = 0;
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly env: BenchEnv,
    private readonly c: Connections,
    private readonly workerPid: number,
  ) {
    this.cpuStart = this.cpuNow();
    this.timer = setInterval(() => this.sample(), 250);
    this.timer.unref();
  }

  /** Follows `proc` as the producer from now on. */
  producer(proc: CliProcess): void {
    this.sample();
    this.producerCpu += this.current?.cpu ?? 0;
    this.current = { pid: pidOf(proc), peak: 0, cpu: 0 };
  }

  /** The followed producer's peak so far. */
  producerPeak(): number {
    this.sample();
    return this.current?.peak ?? 0;
  }

  stop(): {
    peaks: { worker: number; sourceRedis: number; queueRedis: number; elasticsearch: number };
    queuePeakBytes: number;
    cpuSeconds: Record<string, number>;
    load: RunLoad;
  } {
    this.sample();
    clearInterval(this.timer);
    const now = this.cpuNow();
    const cpu = Object.fromEntries(Object.entries(now).map(([p, s]) => [p, s - (this.cpuStart[p] ?? 0)]));
    return {
      peaks: { ...this.peaks },
      queuePeakBytes: this.queuePeak,
      cpuSeconds: { ...cpu, producer: this.producerCpu + (this.current?.cpu ?? 0) },
      load: { max: Math.max(...this.loads), mean: this.loads.reduce((a, b) => a + b, 0) / this.loads.length },
    };
  }

  private cpuNow(): Record<string, number> {
    return {
      worker: cpuSeconds(this.workerPid),
      'source redis': cpuSeconds(this.env.pids.source),
      'queue redis': cpuSeconds(this.env.pids.queue),
      elasticsearch: cpuSeconds(this.env.pids.es),
    };
  }

  private sample(): void {
    const p = this.peaks;
    p.worker = Math.max(p.worker, rssBytes(this.workerPid), hwmBytes(this.workerPid));
    p.sourceRedis = Math.max(p.sourceRedis, rssBytes(this.env.pids.source));
    p.queueRedis = Math.max(p.queueRedis, rssBytes(this.env.pids.queue));
    p.elasticsearch = Math.max(p.elasticsearch, rssBytes(this.env.pids.es));
    const cur = this.current;
    if (cur) {
      cur.peak = Math.max(cur.peak, rssBytes(cur.pid), hwmBytes(cur.pid));
      const cpu = cpuSeconds(cur.pid);
      // A process that is gone reads as 0: keep what it had used.
      if (cpu > cur.cpu) cur.cpu = cpu;
    }
    if (this.ticks++ % 4 === 0) {
      this.loads.push(loadavg()[0] ?? NaN);
      usedMemory(this.c.queueRedis)
        .then((b) => (this.queuePeak = Math.max(this.queuePeak, b)))
        .catch(() => undefined);
    }
  }
}

/** The block BENCHMARKS.md shows for the scenario. */
/** Each size's section, then how each size's keys/s compares with the first (smallest asked first). */
export function renderBigSnapshots(
  results: readonly BigSnapshotResult[],
  n: (x: number, digits?: number) => string,
  cores: number,
): string[] {
  const lines = results.flatMap((r) => renderBigSnapshot(r, n, cores));
  const [first, ...rest] = results;
  if (first === undefined || rest.length === 0) return lines;
  const rate = (r: BigSnapshotResult): number => r.keys / r.seconds;
  lines.push(
    `Keys/s against ${n(first.keys)} keys in the same run: ${rest
      .map((r) => `${n(r.keys)} keys ${n(rate(r))} against ${n(rate(first))}, ${n((100 * rate(r)) / rate(first))} %`)
      .join('; ')}.`,
    '',
  );
  return lines;
}

function renderBigSnapshot(r: BigSnapshotResult, n: (x: number, digits?: number) => string, cores: number): string[] {
  const mib = (b: number): string => `${n(b / 2 ** 20)} MiB`;
  const gb = (b: number): string => `${n(b / 2 ** 30, 1)} GiB`;
  const s = r.sizing;
  const k = r.kill;
  const rate = r.keys / r.seconds;
  const before = k.indexedAtKill / k.atSeconds;
  const after = (r.keys - k.indexedAtKill) / (r.seconds - k.atSeconds);
  const p = r.peakRss;
  const us = (name: string): string => n(r.cpuUsPerKey[name] ?? NaN, 1);
  const toolUs = ['worker', 'source redis', 'queue redis', 'producer'].reduce(
    (a, name) => a + (r.cpuUsPerKey[name] ?? 0),
    0,
  );
  const lost = r.keys - r.count + r.verify.missing;
  return [
    '### Big snapshot, producer SIGKILLed half-way and resumed',
    '',
    `${n(r.keys)} mixed keys (bench/data.ts) seeded in ${n(r.seedSeconds)} s; a \`snapshot\` producer process and a \`worker\` process (the tool's defaults); the producer is SIGKILLed as soon as the SCAN cursor it saved in the queue Redis has passed half the keyspace (the kill is on keys *enqueued*, the point resume acts on), after a random delay of up to one SCAN page's time so that it lands anywhere in a page (here ${n(k.delayMs)} of ${n(k.pageMs)} ms), restarted at once without \`--restart\`, so it resumes from that cursor; done when Elasticsearch counts every key and the queue is empty, then \`verify\` compares every key.`,
    '',
    '| keys | time to complete | keys/s overall | keys/s indexed before the kill | keys/s indexed after | killed at | saved cursor at the kill | enqueued before the kill | enqueued by the resume (time) | duplicates | indexed | verify: missing, stale, extra | load average (max, mean) |',
    '| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |',
    `| ${n(r.keys)} | ${n(r.seconds)} s | ${n(rate)} | ${n(before)} | ${n(after)} | ${n(k.atSeconds, 1)} s (restarted at ${n(k.restartedAtSeconds, 1)} s; ${n(k.indexedAtKill)} indexed) | ${n(100 * k.cursorShare)} % | ${n(r.enqueuedBeforeKill)} | ${n(r.enqueuedByResume)} (${n(r.resumeSeconds, 1)} s) | ${n(r.duplicates)} (${n((100 * r.duplicates) / r.keys, 3)} %) | ${n(r.count)} | ${n(r.verify.missing)}, ${n(r.verify.stale)}, ${n(r.verify.extra)} of ${n(r.verify.checked)} (${n(r.verify.seconds)} s) | ${n(r.load.max, 2)}, ${n(r.load.mean, 2)} on ${cores} cores |`,
    '',
    `Nothing lost: ${lost === 0 && r.verify.exitCode === 0 ? 'yes' : `**NO** (${n(r.keys - r.count)} not indexed, verify exit ${r.verify.exitCode})`}. Duplicates are index operations beyond one per key (Elasticsearch's indexing.index_total − keys): the keys the killed producer had enqueued past the last cursor it saved, enqueued again by the resume; at most about one SCAN page. Enqueued before the kill = index operations − what the resumed producer reported.`,
    '',
    '| peak RSS | producer before the kill | producer after (resumed) | worker | source Redis | queue Redis | Elasticsearch |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: |',
    `| ${n(r.keys)} keys | ${mib(p.producerBefore)} | ${mib(p.producerAfter)} | ${mib(p.worker)} | ${mib(p.sourceRedis)} | ${mib(p.queueRedis)} | ${mib(p.elasticsearch)} |`,
    '',
    `At the end: source Redis used_memory ${mib(r.sourceBytes)} (${n(r.sourceBytes / r.keys)} B/key), queue Redis peak used_memory ${mib(r.queuePeakBytes)} (the backlog of key-only jobs the producer ran ahead of the worker with), Elasticsearch primary store ${mib(r.esStoreBytes)} (${n(r.esStoreBytes / r.keys)} B/doc). Disk under the data dirs: source Redis ${mib(r.disk.sourceRedis)} (no persistence), queue Redis ${mib(r.disk.queueRedis)} (AOF), Elasticsearch ${mib(r.disk.elasticsearch)}. CPU µs per key over the run: worker ${us('worker')}, source Redis ${us('source redis')}, queue Redis ${us('queue redis')}, producers ${us('producer')} = tool ${n(toolUs, 1)}; Elasticsearch ${us('elasticsearch')}.`,
    '',
    `Sizing, measured first on ${n(s.probeKeys)} keys: source Redis ${n(s.redisBytesPerKey)} B/key (INFO used_memory), Elasticsearch ${n(s.esBytesPerKey)} B/doc (primary store, flushed, one segment). For ${n(TARGET_KEYS)} keys: source Redis about ${gb(s.redisBytesPerKey * TARGET_KEYS)}, Elasticsearch about ${gb(s.esBytesPerKey * TARGET_KEYS)} of disk (up to twice that while segments merge); at ${n(rate)} keys/s, about ${n(TARGET_KEYS / rate / 60)} min to complete, plus seeding (about ${n((TARGET_KEYS * r.seedSeconds) / Math.max(1, r.keys - s.probeKeys) / 60)} min) and verify (about ${n((TARGET_KEYS * r.verify.seconds) / r.keys / 60)} min). The machine: ${gb(s.memTotal)} memory, ${gb(s.memAvailable)} available, ${gb(s.diskFree)} free disk under the stack dir before the run; the scenario refuses a size whose source data would take more than 60 % of the available memory or whose index (twice over) more than 80 % of the free disk.`,
    '',
  ];
}
