import type { Redis } from 'ioredis';
import {
  benchConfig,
  connect,
  drained,
  percentile,
  resetServers,
  sleep,
  startCli,
  waitForOutput,
  type BenchEnv,
  type CliProcess,
  type Connections,
} from './support';

const INDEX = 'bench-live';

export interface LiveStep {
  workers: number;
  /** Changes per second asked of the load generator; 0 = as fast as it can write. */
  targetRate: number;
  achievedRate: number;
  changes: number;
  probes: number;
  p50: number;
  p95: number;
  p99: number;
  /** How long the queue took to empty once the load stopped. */
  drainMs: number;
  keptUp: boolean;
}

export interface LiveOptions {
  rates: readonly number[];
  /** Extra steps bisecting between the highest rate that held and the lowest that did not. */
  refineSteps: number;
  workerCounts: readonly number[];
  durationMs: number;
  keyspace: number;
}

/**
 * Sustained change rates through a producer process and 1..n worker processes. Latency is
 * measured on sampled changes, from just before the Redis write to the moment a realtime
 * GET (mget) returns the document holding it.
 */
export async function liveScenario(env: BenchEnv, opts: LiveOptions): Promise<LiveStep[]> {
  const steps: LiveStep[] = [];
  for (const workers of opts.workerCounts) {
    const c = connect(env);
    const procs: CliProcess[] = [];
    try {
      await resetServers(c, `${INDEX}*`);
      const index = `${INDEX}-${workers}w`;
      procs.push(...(await startPipelineProcesses(env, index, workers)));
      // Unmeasured: the first seconds of fresh processes (JIT, first bulks, the index's first
      // documents) would otherwise be charged to the lowest rate.
      const first = opts.rates[0];
      if (first !== undefined)
        await runStep(c, index, workers, first, { ...opts, durationMs: Math.min(2000, opts.durationMs) });
      const mine: LiveStep[] = [];
      for (const rate of opts.rates) mine.push(await runStep(c, index, workers, rate, opts));
      for (let i = 0; i < opts.refineSteps; i++) {
        const rate = bisectKnee(kneeBracket(mine));
        if (rate === undefined) break;
        mine.push(await runStep(c, index, workers, rate, opts));
      }
      steps.push(...mine);
    } finally {
      await Promise.all(procs.map((p) => p.stop()));
      await c.close();
    }
  }
  return steps;
}

/** Issue 14's live target: capture to indexed within this at the 99th percentile. */
export const P99_TARGET_MS = 250;

/** A step holds when the queue kept up and its p99 stayed under the target. */
export function holds(s: LiveStep): boolean {
  return s.keptUp && s.p99 < P99_TARGET_MS;
}

/**
 * The knee of one worker count's fixed-rate steps: from the lowest rate that held, the first
 * rate above it that did not, and the highest below that which did. A low rate that failed
 * before any held, or a rate above the first failure that holds again, is noise of a shared
 * machine, not capacity, so neither moves the bracket.
 */
export function kneeBracket(steps: readonly LiveStep[]): { held: number; failed: number } | undefined {
  const fixed = steps.filter((s) => s.targetRate > 0).sort((a, b) => a.targetRate - b.targetRate);
  const lowest = fixed.findIndex(holds);
  if (lowest < 0) return undefined;
  const failed = fixed.slice(lowest).find((s) => !holds(s));
  if (!failed) return undefined;
  const held = fixed.filter((s) => s.targetRate < failed.targetRate && holds(s)).at(-1);
  return held ? { held: held.targetRate, failed: failed.targetRate } : undefined;
}

/** Below this gap the bracket is as precise as one run's noise allows. */
const KNEE_PRECISION = 500;

/** The next rate to try inside the bracket, to the nearest 100/s; none once it is narrow enough. */
export function bisectKnee(bracket: { held: number; failed: number } | undefined): number | undefined {
  if (!bracket || bracket.failed - bracket.held <= KNEE_PRECISION) return undefined;
  return Math.round((bracket.held + bracket.failed) / 200) * 100;
}

/** A producer and `workers` worker processes, started and ready. */
export async function startPipelineProcesses(
  env: BenchEnv,
  index: string,
  workers: number,
  extra: Parameters<typeof benchConfig>[2] = {},
): Promise<CliProcess[]> {
  const input = benchConfig(env, index, extra);
  const procs = Array.from({ length: workers }, () => startCli(input, ['worker']));
  await Promise.all(procs.map((p) => waitForOutput(p, 'worker started')));
  const producer = startCli(input, ['producer']);
  await waitForOutput(producer, 'capturing keyspace notifications');
  return [producer, ...procs];
}

async function runStep(
  c: Connections,
  index: string,
  workers: number,
  rate: number,
  opts: LiveOptions,
): Promise<LiveStep> {
  const probes = new ProbeTracker(c.engine, index);
  const probing = probes.run();
  const load = await generateLoad(c.source, rate, opts.durationMs, opts.keyspace, probes);
  const stopped = performance.now();
  await drained(c.queue, 120000, 10);
  const drainMs = performance.now() - stopped;
  probes.finish(10000);
  await probing;
  const latencies = probes.latencies.sort((a, b) => a - b);
  const achievedRate = load.changes / load.seconds;
  return {
    workers,
    targetRate: rate,
    achievedRate,
    changes: load.changes,
    probes: latencies.length,
    p50: percentile(latencies, 50),
    p95: percentile(latencies, 95),
    p99: percentile(latencies, 99),
    drainMs,
    keptUp: drainMs < 1000 && (rate === 0 || achievedRate >= rate * 0.95),
  };
}

/** HSETs at `rate` per second (0: as fast as possible) on random keys; every 50th is a probe. */
async function generateLoad(
  redis: Redis,
  rate: number,
  durationMs: number,
  keyspace: number,
  probes: ProbeTracker,
): Promise<{ changes: number; seconds: number }> {
  let seq = 0;
  const started = performance.now();
  for (let now = started; now - started < durationMs; now = performance.now()) {
    const due = rate === 0 ? 1000 : Math.floor((rate * (now - started)) / 1000) - seq;
    if (due <= 0) {
      await sleep(2);
      continue;
    }
    const pipe = redis.pipeline();
    const sent = performance.now();
    for (let i = 0; i < due; i++) {
      seq++;
      const key = `live:${Math.floor(Math.random() * keyspace)}`;
      pipe.hset(key, 'seq', String(seq), 'payload', `change ${seq} of a benchmark key`);
      if (seq % 50 === 0) probes.add(key, seq, sent);
    }
    await pipe.exec();
  }
  return { changes: seq, seconds: (performance.now() - started) / 1000 };
}

/** Polls the engine (realtime mget) for the sampled changes until each is visible. */
class ProbeTracker {
  readonly latencies: number[] = [];
  private pending = new Map<string, { seq: number; sent: number }>();
  private deadline = Infinity;

  constructor(
    private readonly engine: Connections['engine'],
    private readonly index: string,
  ) {}

  add(key: string, seq: number, sent: number): void {
    // A later change of the same key supersedes an earlier probe: its value overwrites it.
    this.pending.set(key, { seq, sent });
  }

  /** From now on `run` ends once every probe is seen, or fails after `timeoutMs`. */
  finish(timeoutMs: number): void {
    this.deadline = performance.now() + timeoutMs;
  }

  async run(): Promise<void> {
    for (;;) {
      if (this.pending.size === 0) {
        if (this.deadline !== Infinity) return;
        await sleep(2);
        continue;
      }
      if (performance.now() > this.deadline)
        throw new Error(`${this.pending.size} sampled changes never became visible`);
      const keys = [...this.pending.keys()].slice(0, 500);
      const seqs = await this.engine.seqOf(this.index, keys);
      const now = performance.now();
      seqs.forEach((seen, i) => {
        const key = keys[i];
        if (key === undefined) return; // mget answers one doc per id asked for
        const probe = this.pending.get(key);
        if (probe && seen >= probe.seq) {
          this.latencies.push(now - probe.sent);
          this.pending.delete(key);
        }
      });
      await sleep(2);
    }
  }
}

export interface HotKeysResult {
  updates: number;
  keys: number;
  esWrites: number;
  exact: boolean;
}

/** `rate` updates per second spread over a few keys: how many Elasticsearch writes they cost. */
export async function hotKeysScenario(
  env: BenchEnv,
  rate: number,
  durationMs: number,
  keys = 10,
): Promise<HotKeysResult> {
  const c = connect(env);
  const index = `${INDEX}-hot`;
  let procs: CliProcess[] = [];
  try {
    await resetServers(c, `${INDEX}*`);
    procs = await startPipelineProcesses(env, index, 1);
    const before = await indexedTotal(c.es, index);
    let updates = 0;
    const started = performance.now();
    while (performance.now() - started < durationMs) {
      const due = Math.floor((rate * (performance.now() - started)) / 1000) - updates;
      for (let i = 0; i < due; i++) {
        updates++;
        void c.source.set(`hot:${updates % keys}`, String(updates));
      }
      await sleep(2);
    }
    await c.source.ping();
    // The last change of each hot key waits out its window in the producer before it is queued.
    const ids = Array.from({ length: keys }, (_, k) => `hot:${k}`);
    const values = await c.source.mget(...ids);
    let exact = false;
    const deadline = performance.now() + 10000;
    while (!exact && performance.now() < deadline) {
      await drained(c.queue, 120000, 10);
      const docs = await c.es.mget<{ value?: string }>({ index, ids });
      exact = docs.docs.every((d, k) => 'found' in d && d.found && d._source?.value === values[k]);
      await sleep(50);
    }
    return { updates, keys, esWrites: (await indexedTotal(c.es, index)) - before, exact };
  } finally {
    await Promise.all(procs.map((p) => p.stop()));
    await c.close();
  }
}

async function indexedTotal(es: Connections['es'], index: string): Promise<number> {
  const exists = await es.indices.exists({ index });
  if (!exists) return 0;
  const stats = await es.indices.stats({ index, metric: 'indexing' });
  return stats._all.primaries?.indexing?.index_total ?? 0;
}
