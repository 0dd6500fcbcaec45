import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { devStack, readStackEnv, REPO_ROOT } from '../test/support/dev-stack';
import { memoryScenario, type MemoryResult } from './backlog';
import { bigSnapshotScenario, renderBigSnapshots, type BigSnapshotResult } from './big-snapshot';
import {
  holds,
  hotKeysScenario,
  kneeBracket,
  liveScenario,
  P99_TARGET_MS,
  type HotKeysResult,
  type LiveStep,
} from './live';
import { queueOverheadScenario, type OverheadResult } from './queue-overhead';
import { renderScaleOut, scaleOutScenario, type ScaleOutOptions, type ScaleOutResult } from './scale-out';
import type { ProfileShare } from './profile';
import { searchScenario, type SearchResult } from './search';
import { ENGINES, isEngineName, type EngineName } from './engine';
import {
  baselineScenario,
  engineSnapshotScenario,
  profileScenario,
  snapshotScenario,
  type BaselineComparison,
  type EngineSnapshot,
  type RunLoad,
  type SnapshotResult,
} from './snapshot';
import { itemAt, type BenchEnv } from './support';

const SCENARIOS = [
  'snapshot',
  'profile',
  'live',
  'hot',
  'memory',
  'overhead',
  'search',
  'baseline',
  'scaleout',
  'bigsnapshot',
] as const;
type Scenario = (typeof SCENARIOS)[number];

interface Sizes {
  snapshotKeys: number[];
  /** Interleaved rounds per snapshot size, and the keys the connector-method baseline reads (its round trips are slow). */
  snapshotRounds: number;
  connectorKeys: number;
  baselineKeys: number;
  baselineRounds: number;
  naiveKeys: number;
  profileKeys: number;
  liveRates: number[];
  /** Bisection steps between the last rate that held and the first that did not. */
  liveRefine: number;
  liveWorkers: number[];
  liveMs: number;
  liveKeyspace: number;
  hotRate: number;
  hotMs: number;
  backlog: number;
  overheadChanges: number;
  searchDocs: number;
  searchQueries: number;
  searchConcurrency: number;
  searchMs: number;
  /** `--engines`: the snapshot's keys and interleaved rounds, and the live phase, per engine. */
  engineKeys: number;
  engineRounds: number;
  engineLiveRates: number[];
  engineLiveMs: number;
  scaleOut: ScaleOutOptions;
  /** bigsnapshot: the keys (`--big-keys`), those the sizing is measured on, and SCAN COUNT and keys per job (the defaults when unset). */
  bigKeys: number;
  bigProbeKeys: number;
  bigScanCount?: number;
  bigBatchKeys?: number;
}

const FULL: Sizes = {
  snapshotKeys: [100_000, 1_000_000],
  snapshotRounds: 3,
  connectorKeys: 50_000,
  baselineKeys: 1_000_000,
  baselineRounds: 4,
  naiveKeys: 10_000,
  profileKeys: 300_000,
  // A sweep up to and past the knee (issue 14: 20,000 changes/s on one worker), then flat out.
  liveRates: [1000, 5000, 10000, 15000, 20000, 25000, 30000, 0],
  liveRefine: 3,
  liveWorkers: [1, 2],
  liveMs: 10_000,
  liveKeyspace: 100_000,
  hotRate: 1000,
  hotMs: 10_000,
  backlog: 1_000_000,
  overheadChanges: 20_000,
  searchDocs: 100_000,
  searchQueries: 300,
  searchConcurrency: 16,
  searchMs: 15_000,
  engineKeys: 100_000,
  engineRounds: 3,
  engineLiveRates: [2000, 0],
  engineLiveMs: 5000,
  scaleOut: { rate: 1500, durationMs: 15_000, keyspace: 100_000, partitions: [1, 3], shards: [1, 2] },
  // Issue 14's size; the scenario measures what it needs first and refuses what does not fit.
  bigKeys: 10_000_000,
  bigProbeKeys: 100_000,
};

/** Tiny sizes that run every scenario in well under a minute, so the harness cannot rot. */
const SMOKE: Sizes = {
  snapshotKeys: [2000],
  snapshotRounds: 1,
  connectorKeys: 500,
  baselineKeys: 2000,
  baselineRounds: 1,
  naiveKeys: 200,
  profileKeys: 2000,
  liveRates: [200, 0],
  liveRefine: 1,
  liveWorkers: [1],
  liveMs: 1500,
  liveKeyspace: 1000,
  hotRate: 200,
  hotMs: 1000,
  backlog: 3000,
  overheadChanges: 500,
  searchDocs: 2000,
  searchQueries: 100,
  searchConcurrency: 4,
  searchMs: 1500,
  engineKeys: 2000,
  engineRounds: 1,
  engineLiveRates: [200, 0],
  engineLiveMs: 1500,
  scaleOut: { rate: 200, durationMs: 1500, keyspace: 1000, partitions: [1, 3], shards: [1, 2] },
  // Pages of 100 keys: enough SCAN pages that the kill lands half-way even at this size.
  bigKeys: 20_000,
  bigProbeKeys: 2000,
  bigScanCount: 100,
  bigBatchKeys: 100,
};

interface Results {
  date: string;
  machine: string;
  smoke: boolean;
  snapshot?: SnapshotResult[];
  profile?: ProfileShare[];
  live?: LiveStep[];
  hot?: HotKeysResult;
  memory?: MemoryResult;
  overhead?: OverheadResult;
  search?: SearchResult;
  baseline?: BaselineComparison;
  scaleout?: ScaleOutResult;
  /** One per `--big-keys` size, in the order given. */
  bigsnapshot?: BigSnapshotResult[];
  /** 1-minute load average before and after the run: how busy the shared machine was. */
  load: { before: number; after?: number };
}

const STACK_DIR = '.stack-bench';

/** A size flag's value: its default when not given, else a positive whole number or a clear refusal. */
function positiveInt(flag: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`${flag} takes a positive whole number, not ${value}`);
  return n;
}

/** A comma-separated list of positive whole numbers (key counts). */
function positiveInts(flag: string, value: string | undefined, fallback: number[]): number[] {
  if (value === undefined) return fallback;
  const ns = value.split(',').map(Number);
  if (!ns.every((k) => Number.isInteger(k) && k > 0))
    throw new Error(`${flag} takes positive whole numbers, not ${value}`);
  return ns;
}

async function main(): Promise<void> {
  const opts = new Command('bench')
    .option('--smoke', 'tiny sizes: check that every scenario runs')
    .option('--only <list>', `comma-separated subset of ${SCENARIOS.join(',')}`)
    .option('--out <file>', 'where the results go (default: BENCHMARKS.md, or bench/results/smoke.md with --smoke)')
    .option('--snapshot-keys <list>', 'scenario snapshot: comma-separated key counts instead of the default sizes')
    .option(
      '--big-keys <list>',
      'scenario bigsnapshot: comma-separated key counts, run one after the other and compared (default 10,000,000; 20,000 with --smoke)',
    )
    .option('--baseline <rev>', 'scenario baseline: a git revision whose worker runs interleaved with this build')
    .option('--baseline-keys <n>', 'scenario baseline: the keys of each round (default 1,000,000; 2,000 with --smoke)')
    .option(
      '--engines <list>',
      `run snapshot and live once per engine, one engine at a time, each against its own bulk limit: comma-separated ${Object.keys(ENGINES).join(',')}`,
    )
    .parse()
    .opts<{
      smoke?: boolean;
      only?: string;
      out?: string;
      snapshotKeys?: string;
      bigKeys?: string;
      baseline?: string;
      baselineKeys?: string;
      engines?: string;
    }>();
  if (opts.engines !== undefined) {
    await runEngines(opts.engines, opts.only ?? 'snapshot,live', Boolean(opts.smoke), opts.out);
    return;
  }
  // The baseline scenario needs a revision to compare with: without one it is not run.
  const only = (opts.only?.split(',') ?? SCENARIOS.filter((s) => s !== 'baseline' || opts.baseline)) as Scenario[];
  if (only.includes('baseline') && !opts.baseline) throw new Error('scenario baseline needs --baseline <git revision>');
  for (const s of only)
    if (!SCENARIOS.includes(s)) throw new Error(`unknown scenario ${s}; known: ${SCENARIOS.join(', ')}`);
  const sizes = opts.smoke ? SMOKE : FULL;
  const snapshotKeys = positiveInts('--snapshot-keys', opts.snapshotKeys, sizes.snapshotKeys);
  const bigKeys = positiveInts('--big-keys', opts.bigKeys, [sizes.bigKeys]);
  const baselineKeys = positiveInt('--baseline-keys', opts.baselineKeys, sizes.baselineKeys);
  const out =
    opts.out ?? (opts.smoke ? join(REPO_ROOT, 'bench', 'results', 'smoke.md') : join(REPO_ROOT, 'BENCHMARKS.md'));

  // A stack someone keeps warm stays up afterwards; one this run starts is stopped.
  const startedStack = !/elasticsearch [\d.]*: running/.test(stackStatus(STACK_DIR));
  // Ports the OS assigns: the bench stack must not collide with a dev or test stack started beside it.
  const output = devStack(['up'], STACK_DIR, {
    ES_HEAP: opts.smoke ? '768m' : '2g',
    ES_PORT: 'auto',
    REDIS_PORT: 'auto',
    QUEUE_REDIS_PORT: 'auto',
  });
  const vars = readStackEnv(STACK_DIR);
  const env: BenchEnv = {
    sourceUrl: stackVar(vars, 'REDIS_URL'),
    queueUrl: stackVar(vars, 'QUEUE_REDIS_URL'),
    esUrl: stackVar(vars, 'ELASTICSEARCH_URL'),
    engine: 'elasticsearch',
    pids: {
      es: pidOf(STACK_DIR, 'elasticsearch/es.pid'),
      source: pidOf(STACK_DIR, 'redis/redis.pid'),
      queue: pidOf(STACK_DIR, 'queue-redis/redis.pid'),
    },
  };
  log(`stack ${STACK_DIR}: ${JSON.stringify(env)}${output.includes('starting') ? ' (started)' : ''}`);

  const results: Results = {
    date: new Date().toISOString(),
    machine: `${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}`,
    smoke: Boolean(opts.smoke),
    load: { before: loadavg()[0] ?? NaN },
  };
  const failures: string[] = [];
  const attempt = async (name: Scenario, run: () => Promise<void>): Promise<void> => {
    if (!only.includes(name)) return;
    try {
      await run();
    } catch (err) {
      failures.push(`${name}: ${err instanceof Error ? err.message : String(err)}`);
      log(`${name} FAILED: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    }
  };
  try {
    await attempt('snapshot', async () => {
      results.snapshot = [];
      for (const keys of snapshotKeys) {
        log(`snapshot: ${keys} keys, ${sizes.snapshotRounds} interleaved rounds`);
        results.snapshot.push(
          await snapshotScenario(env, keys, {
            rounds: sizes.snapshotRounds,
            connectorKeys: sizes.connectorKeys,
            naiveKeys: sizes.naiveKeys,
          }),
        );
      }
    });
    await attempt('profile', async () => {
      log(`profile: worker CPU profile during a snapshot of ${sizes.profileKeys} keys`);
      results.profile = await profileScenario(env, sizes.profileKeys);
    });
    await attempt('live', async () => {
      log(`live: rates ${sizes.liveRates.join(', ')} with ${sizes.liveWorkers.join(' and ')} worker processes`);
      results.live = await liveScenario(env, {
        rates: sizes.liveRates,
        refineSteps: sizes.liveRefine,
        workerCounts: sizes.liveWorkers,
        durationMs: sizes.liveMs,
        keyspace: sizes.liveKeyspace,
      });
    });
    await attempt('hot', async () => {
      log(`hot keys: ${sizes.hotRate}/s to 10 keys`);
      results.hot = await hotKeysScenario(env, sizes.hotRate, sizes.hotMs);
    });
    await attempt('memory', async () => {
      log(`memory: backlog of ${sizes.backlog} changes with Elasticsearch paused`);
      results.memory = await memoryScenario(env, sizes.backlog);
    });
    await attempt('overhead', async () => {
      log(`queue overhead: ${sizes.overheadChanges} changes`);
      results.overhead = await queueOverheadScenario(env, sizes.overheadChanges);
    });
    await attempt('search', async () => {
      log(
        `search: ${sizes.searchDocs} documents, ${sizes.searchQueries} distinct queries, concurrency ${sizes.searchConcurrency}, without and with the cache`,
      );
      results.search = await searchScenario(env, {
        docs: sizes.searchDocs,
        queries: sizes.searchQueries,
        concurrency: sizes.searchConcurrency,
        durationMs: sizes.searchMs,
      });
    });
    await attempt('scaleout', async () => {
      log(`scale-out: ${sizes.scaleOut.rate} changes/s, queue partitions and capture shards on 3-master clusters`);
      results.scaleout = await scaleOutScenario(env, sizes.scaleOut);
    });
    await attempt('bigsnapshot', async () => {
      // Sizes one after the other in one run, so their keys/s compare on the same machine and build.
      results.bigsnapshot = [];
      for (const keys of bigKeys) {
        log(`big snapshot: ${keys} keys, the producer SIGKILLed half-way and resumed`);
        results.bigsnapshot.push(
          await bigSnapshotScenario(env, {
            keys,
            probeKeys: sizes.bigProbeKeys,
            stackDir: join(REPO_ROOT, STACK_DIR),
            ...(sizes.bigScanCount ? { scanCount: sizes.bigScanCount } : {}),
            ...(sizes.bigBatchKeys ? { batchKeys: sizes.bigBatchKeys } : {}),
          }),
        );
      }
    });
    await attempt('baseline', async () => {
      const rev = opts.baseline;
      if (rev === undefined) throw new Error('scenario baseline needs --baseline <git revision>'); // checked at start
      log(
        `baseline: building ${rev}, then ${sizes.baselineRounds} interleaved rounds of a ${baselineKeys}-key snapshot`,
      );
      const build = buildRevision(rev);
      try {
        results.baseline = await baselineScenario(
          env,
          baselineKeys,
          { name: build.name, cli: build.cli, batchKeys: build.batchKeys },
          sizes.baselineRounds,
        );
      } finally {
        build.remove();
      }
    });
  } finally {
    if (startedStack) devStack(['down'], STACK_DIR);
    results.load.after = loadavg()[0] ?? NaN;
  }
  const command = `npm run bench --${opts.smoke ? ' --smoke' : ''}${opts.only ? ` --only ${opts.only}` : ''}${opts.snapshotKeys ? ` --snapshot-keys ${opts.snapshotKeys}` : ''}${opts.bigKeys ? ` --big-keys ${opts.bigKeys}` : ''}${opts.baseline ? ` --baseline ${opts.baseline}` : ''}${opts.baselineKeys ? ` --baseline-keys ${opts.baselineKeys}` : ''}`;
  // A run at other sizes gets a block of its own: a 10M big snapshot does not replace the 1M one.
  const sized = `${opts.snapshotKeys ? ` --snapshot-keys ${opts.snapshotKeys}` : ''}${opts.bigKeys ? ` --big-keys ${opts.bigKeys}` : ''}`;
  writeResults(
    out,
    `${opts.only ?? 'all'}${sized}`,
    command.replace(/ --$/, ''),
    render(results, failures, command.replace(/ --$/, '')),
  );
  log(`results written to ${out}`);
  if (failures.length > 0) process.exitCode = 1;
}

/** Another revision, checked out beside this one and built with this checkout's packages. */
function buildRevision(rev: string): { name: string; cli: string; batchKeys: number; remove(): void } {
  const git = (...args: string[]): string =>
    execFileSync('git', ['-C', REPO_ROOT, ...args], { encoding: 'utf8' }).trim();
  const commit = git('rev-parse', '--short', rev);
  const dir = mkdtempSync(join(tmpdir(), 'res-bench-baseline-'));
  git('worktree', 'add', '--detach', dir, commit);
  const remove = (): void => {
    git('worktree', 'remove', '--force', dir);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    symlinkSync(join(REPO_ROOT, 'node_modules'), join(dir, 'node_modules'));
    execFileSync(
      process.execPath,
      [join(REPO_ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(dir, 'tsconfig.build.json')],
      { stdio: 'inherit' },
    );
  } catch (err) {
    remove();
    throw err;
  }
  return { name: `${rev} (${commit})`, cli: join(dir, 'dist', 'cli', 'main.js'), batchKeys: batchKeysOf(dir), remove };
}

/**
 * A built revision's default keys per snapshot job, asked of its own config schema in a process
 * of its own (its modules would clash with this build's in this one); 500, the first default,
 * for a revision whose schema is not where this build has it.
 */
function batchKeysOf(dir: string): number {
  const registry = join(dir, 'dist', 'producers', 'capture', 'registry.js');
  try {
    const out = execFileSync(
      process.execPath,
      [
        '-e',
        `process.stdout.write(String(require(${JSON.stringify(registry)}).ConfigSchema.shape.producer.parse({}).snapshotBatchKeys))`,
      ],
      { encoding: 'utf8' },
    );
    return positiveInt("the revision's producer.snapshotBatchKeys", out, 500);
  } catch (err) {
    log(`baseline: could not read the revision's producer.snapshotBatchKeys (${(err as Error).message}); using 500`);
    return 500;
  }
}

function pidOf(stackDir: string, file: string): number {
  return Number(readFileSync(join(REPO_ROOT, stackDir, file), 'utf8').trim());
}

function stackStatus(stackDir: string): string {
  try {
    return devStack(['status'], stackDir);
  } catch {
    return '';
  }
}

/**
 * Replaces the block a run of these scenarios wrote before (a full run's, or an `--only` run's
 * of its own), keeping everything else in `file`: what people wrote, other runs' blocks.
 */
function writeResults(file: string, scenarios: string, command: string, generated: string): void {
  mkdirSync(join(file, '..'), { recursive: true });
  const begin = `<!-- bench:begin ${scenarios} `;
  const end = `<!-- bench:end ${scenarios} -->`;
  const block = `${begin}(written by ${command}; edit outside these markers) -->\n${generated}\n${end}`;
  const old = existsSync(file) ? readFileSync(file, 'utf8') : '';
  const from = old.indexOf(begin);
  const to = old.indexOf(end);
  const text =
    from >= 0 && to > from
      ? `${old.slice(0, from)}${block}${old.slice(to + end.length)}`
      : `${old}${old ? '\n' : ''}${block}\n`;
  writeFileSync(file, text);
}

const n = (x: number, digits = 0): string =>
  Number.isFinite(x)
    ? x.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits })
    : '–';
const mib = (bytes: number): string => `${n(bytes / 2 ** 20)} MiB`;

/** A variable dev-stack.sh writes to the stack's env file after `up`. */
function stackVar(vars: Readonly<Record<string, string>>, name: string, stackDir = STACK_DIR): string {
  const value = vars[name];
  if (value === undefined) throw new Error(`${stackDir}/env has no ${name} after dev-stack.sh up`);
  return value;
}

function render(r: Results, failures: readonly string[], command: string): string {
  const load = `load average ${n(r.load.before, 2)} before, ${n(r.load.after ?? NaN, 2)} after`;
  const lines: string[] = [
    `Run ${r.date.slice(0, 16).replace('T', ' ')} UTC on ${r.machine} (${load})${r.smoke ? ' — SMOKE SIZES, not a measurement' : ''}.`,
    '',
  ];
  if (r.snapshot) lines.push(...renderSnapshot(r.snapshot, command), '');
  if (r.baseline) {
    const b = r.baseline;
    lines.push(
      `### Against a baseline revision: ${b.baseline}`,
      '',
      `Snapshot of ${n(b.keys)} keys, one worker process; each round runs the bulk helper, then both workers (order swapped every round), on the same data; the snapshot enqueues jobs of each build's own default size (\`producer.snapshotBatchKeys\`: this build ${n(b.batchKeys.current)} keys, the baseline ${n(b.batchKeys.baseline)}).`,
      '',
      '| round | this build (keys/s) | baseline (keys/s) | bulk helper (docs/s) | this build / (a) | baseline / (a) | this build / baseline | CPU µs/key, this build | CPU µs/key, baseline |',
      '| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    );
    const row = (label: string, f: (g: (x: (typeof b.rounds)[number]) => number) => number): string =>
      `| ${label} | ${n(f((x) => x.current))} | ${n(f((x) => x.baseline))} | ${n(f((x) => x.bulkHelper))} | ${n(f((x) => (100 * x.current) / x.bulkHelper))} % | ${n(f((x) => (100 * x.baseline) / x.bulkHelper))} % | ${n(
        f((x) => x.current / x.baseline),
        3,
      )} | ${n(
        f((x) => x.currentCpuUs),
        1,
      )} | ${n(
        f((x) => x.baselineCpuUs),
        1,
      )} |`;
    b.rounds.forEach((x, i) => lines.push(row(String(i + 1), (g) => g(x))));
    const processes = Object.keys(b.rounds[0]?.currentByProcess ?? {});
    const byProcess = (side: 'currentByProcess' | 'baselineByProcess'): string =>
      processes.map((p) => `${p} ${n(median(b.rounds.map((x) => x[side][p] ?? 0)), 1)}`).join(', ');
    lines.push(
      row('median', (g) => median(b.rounds.map(g))),
      '',
      'CPU µs/key: worker, source Redis, queue Redis and the snapshot producer together (Elasticsearch left out). Median per process —',
      `this build: ${byProcess('currentByProcess')}; baseline: ${byProcess('baselineByProcess')}.`,
      '',
    );
  }
  if (r.profile) {
    lines.push(
      '### Where the worker spends its time (snapshot, CPU profile)',
      '',
      '| where (self time) | share |',
      '| --- | ---: |',
    );
    for (const p of r.profile) lines.push(`| ${p.where} | ${n(p.percent, 1)} % |`);
    lines.push('');
  }
  if (r.live) {
    lines.push(
      '### Live changes: capture-to-indexed latency',
      '',
      '| worker processes | target changes/s | achieved changes/s | sampled | p50 ms | p95 ms | p99 ms | drain after load (ms) | kept up |',
      '| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | :---: |',
    );
    // Bisection steps ran last: the table reads in rate order, flat out at the end.
    const order = (x: LiveStep): number => (x.targetRate === 0 ? Infinity : x.targetRate);
    const live = [...r.live].sort((a, b) => a.workers - b.workers || order(a) - order(b));
    for (const s of live) {
      lines.push(
        `| ${s.workers} | ${s.targetRate === 0 ? 'max' : n(s.targetRate)} | ${n(s.achievedRate)} | ${n(s.probes)} | ${n(s.p50)} | ${n(s.p95)} | ${n(s.p99)} | ${n(s.drainMs)} | ${s.keptUp ? 'yes' : 'no'} |`,
      );
    }
    lines.push(
      '',
      `The knee (a rate holds when the queue kept up and p99 stayed under ${P99_TARGET_MS} ms; the sweep's steps, then bisection):`,
      '',
    );
    for (const workers of [...new Set(live.map((s) => s.workers))]) {
      const bracket = kneeBracket(live.filter((s) => s.workers === workers));
      const held = live.filter((s) => s.workers === workers && s.targetRate > 0 && holds(s)).map((s) => s.targetRate);
      lines.push(
        bracket
          ? `- ${workers} worker process${workers === 1 ? '' : 'es'}: holds at ${n(bracket.held)} changes/s, not at ${n(bracket.failed)}.`
          : held.length
            ? `- ${workers} worker process${workers === 1 ? '' : 'es'}: held at every rate tried from ${n(Math.min(...held))} up to ${n(Math.max(...held))} changes/s.`
            : `- ${workers} worker process${workers === 1 ? '' : 'es'}: held at no rate tried.`,
      );
    }
    lines.push('');
  }
  if (r.hot) {
    lines.push(
      '### Hot keys',
      '',
      `${n(r.hot.updates)} updates to ${r.hot.keys} keys cost ${n(r.hot.esWrites)} Elasticsearch writes (${n((100 * r.hot.esWrites) / r.hot.updates, 1)} %); final state exact: ${r.hot.exact ? 'yes' : 'NO'}.`,
      '',
    );
  }
  if (r.memory) {
    const m = r.memory;
    lines.push(
      '### Memory with a backlog, Elasticsearch paused',
      '',
      `| changes queued | in jobs | producer peak RSS | worker peak RSS (concurrency ${n(m.concurrency)}) | queue Redis used_memory |`,
      '| ---: | ---: | ---: | ---: | ---: |',
      `| ${n(m.changes)} | ${n(m.jobs)} | ${mib(m.producerPeakRss)} | ${mib(m.workerPeakRss)} | ${mib(m.queueRedisBytes)} |`,
      '',
    );
  }
  if (r.overhead) {
    const o = r.overhead;
    lines.push(
      '### Queue overhead per change',
      '',
      `${n(o.commandsPerChange, 1)} commands, ${n(o.bytesInPerChange)} bytes in and ${n(o.bytesOutPerChange)} bytes out at the queue Redis per change (${n(o.changes)} changes on distinct keys):`,
      '',
      '| command | calls per change |',
      '| --- | ---: |',
    );
    for (const c of o.byCommand) lines.push(`| ${c.command} | ${n(c.perChange, 2)} |`);
    lines.push('');
  }
  if (r.search) {
    const s = r.search;
    lines.push(
      '### Search API: without and with the cache',
      '',
      `\`serve\` over ${n(s.docs)} documents indexed by the pipeline; ${n(s.queries)} distinct queries (q terms, type filters, sorts, page sizes, a quarter as POST bodies with the query DSL, a third followed by their next page) drawn with Zipf-like popularity by ${s.concurrency} concurrent clients for ${n(s.durationMs / 1000, 1)} s each:`,
      '',
      '| cache | requests | requests/s | p50 ms | p95 ms | p99 ms | hit ratio |',
      '| --- | ---: | ---: | ---: | ---: | ---: | ---: |',
    );
    for (const run of s.runs) {
      lines.push(
        `| ${run.mode === 'cached' ? 'on' : 'off'} (TTL ${n(run.cacheTtlMs)} ms) | ${n(run.requests)} | ${n(run.perSecond)} | ${n(run.p50, 1)} | ${n(run.p95, 1)} | ${n(run.p99, 1)} | ${n(100 * run.hitRatio, 1)} % |`,
      );
    }
    lines.push('');
  }
  if (r.scaleout) lines.push(...renderScaleOut(r.scaleout, n));
  if (r.bigsnapshot) lines.push(...renderBigSnapshots(r.bigsnapshot, n, cpus().length));
  for (const f of failures) lines.push(`**Scenario failed** — ${f}`, '');
  return lines.join('\n');
}

interface EngineRun {
  name: EngineName;
  version: string;
  snapshot?: EngineSnapshot;
  live?: LiveStep[];
  load: { before: number; after?: number };
}

const ENGINE_SCENARIOS = ['snapshot', 'live'] as const;

/**
 * `--engines`: for each engine in turn, its own stack (state dir `.stack-bench/<engine>`, ports
 * the OS assigns) started, the snapshot and live scenarios run against it and its own bulk
 * limit, the stack stopped: never two engines at once on a 2-core machine.
 */
async function runEngines(list: string, onlyList: string, smoke: boolean, outOpt?: string): Promise<void> {
  const names = list.split(',').map((e) => e.trim());
  for (const e of names)
    if (!isEngineName(e)) throw new Error(`unknown engine ${e}; known: ${Object.keys(ENGINES).join(', ')}`);
  const engines = names.filter(isEngineName);
  const only = onlyList.split(',');
  for (const s of only)
    if (!(ENGINE_SCENARIOS as readonly string[]).includes(s))
      throw new Error(`--engines runs ${ENGINE_SCENARIOS.join(' and ')} only, not ${s}`);
  const sizes = smoke ? SMOKE : FULL;
  const out = outOpt ?? (smoke ? join(REPO_ROOT, 'bench', 'results', 'smoke.md') : join(REPO_ROOT, 'BENCHMARKS.md'));
  const date = new Date().toISOString();
  const runs: EngineRun[] = [];
  const failures: string[] = [];
  for (const name of engines) {
    const { product, version } = ENGINES[name];
    // Inside the default bench stack's state dir (ignored by git), beside its own services, never sharing them.
    const stackDir = `${STACK_DIR}/${name}`;
    const run: EngineRun = { name, version, load: { before: loadavg()[0] ?? NaN } };
    runs.push(run);
    const startedStack = !stackStatus(stackDir).includes(`${product} ${version}: running`);
    try {
      log(`${name}: starting ${product} ${version} in ${stackDir}`);
      devStack(['up'], stackDir, {
        ENGINE: product,
        ...(product === 'opensearch' ? { OS_VERSION: version } : { ES_VERSION: version }),
        ES_HEAP: smoke ? '768m' : '2g',
        ES_PORT: 'auto',
        REDIS_PORT: 'auto',
        QUEUE_REDIS_PORT: 'auto',
      });
      const vars = readStackEnv(stackDir);
      const env: BenchEnv = {
        sourceUrl: stackVar(vars, 'REDIS_URL', stackDir),
        queueUrl: stackVar(vars, 'QUEUE_REDIS_URL', stackDir),
        esUrl: stackVar(vars, 'ELASTICSEARCH_URL', stackDir),
        engine: product,
        pids: {
          es: pidOf(stackDir, `${product}/es.pid`),
          source: pidOf(stackDir, 'redis/redis.pid'),
          queue: pidOf(stackDir, 'queue-redis/redis.pid'),
        },
      };
      // What dev-stack.sh started (the Elasticsearch integ-test-zip answers GET / with 405).
      run.version = readFileSync(join(REPO_ROOT, stackDir, product, 'version'), 'utf8').trim();
      if (only.includes('snapshot')) {
        log(`${name}: snapshot of ${sizes.engineKeys} keys, ${sizes.engineRounds} interleaved rounds`);
        try {
          run.snapshot = await engineSnapshotScenario(env, sizes.engineKeys, sizes.engineRounds);
        } catch (err) {
          failures.push(`${name} snapshot: ${err instanceof Error ? err.message : String(err)}`);
          log(`${name} snapshot FAILED: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
        }
      }
      if (only.includes('live')) {
        log(`${name}: live at ${sizes.engineLiveRates.join(', ')} changes/s, one worker`);
        try {
          run.live = await liveScenario(env, {
            rates: sizes.engineLiveRates,
            refineSteps: 0,
            workerCounts: [1],
            durationMs: sizes.engineLiveMs,
            keyspace: sizes.liveKeyspace,
          });
        } catch (err) {
          failures.push(`${name} live: ${err instanceof Error ? err.message : String(err)}`);
          log(`${name} live FAILED: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
        }
      }
    } catch (err) {
      failures.push(`${name}: ${err instanceof Error ? err.message : String(err)}`);
      log(`${name} FAILED: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    } finally {
      if (startedStack) devStack(['down'], stackDir);
      run.load.after = loadavg()[0] ?? NaN;
    }
  }
  const machine = `${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}`;
  const key = `${onlyList} --engines ${list}`;
  writeResults(
    out,
    key,
    `npm run bench -- ${smoke ? '--smoke ' : ''}--only ${onlyList} --engines ${list}`,
    renderEngines(date, machine, smoke, sizes, runs, failures),
  );
  log(`results written to ${out}`);
  if (failures.length > 0) process.exitCode = 1;
}

/** A run on a machine whose 1-minute load went above its core count: its figures are suspect. */
function busy(load: RunLoad): string {
  return load.max > cpus().length ? ' **busy**' : '';
}

/** Median with the range of the rounds, e.g. `64 % (58–71)`. */
function spread(xs: readonly number[], digits = 0, unit = ''): string {
  return `${n(median(xs), digits)}${unit} (${n(Math.min(...xs), digits)}–${n(Math.max(...xs), digits)})`;
}

function renderSnapshot(runs: readonly SnapshotResult[], command: string): string[] {
  const tool = (m: Record<string, number>): number =>
    Object.entries(m)
      .filter(([p]) => p !== 'elasticsearch')
      .reduce((a, [, us]) => a + us, 0);
  const lines = [
    '### Snapshot throughput',
    '',
    `Interleaved (\`${command}\`): each round runs (a) the bulk helper, redis-es-sync and (c) the connector method on the same seeded keys, each into a fresh index, their order rotated every round; the ratios are the median of the rounds' ratios with their min–max. (a) builds the same documents in memory and sends them with the client's bulk helper (5 MB requests, 2 in flight, no Redis, no queue): the limit. (c) is the method of Elastic's Redis connector: SCAN, then per key TYPE, the read and MEMORY USAGE as sequential round trips, bulks of 500 documents; on the first N keys only, its round trips being slow. (b) SCAN, then one read and one index request per key, once per size on the first N keys. CPU µs per key is the primary figure: a busy machine moves it least.`,
    '',
    '| keys | rounds | redis-es-sync (keys/s) | (a) bulk helper (docs/s) | ratio to (a) | (c) connector method (keys/s) | ratio to (c) | (b) one request per key (keys/s) | ratio to (b) | CPU µs/key, redis-es-sync |',
    '| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const s of runs) {
    const rs = s.rounds;
    lines.push(
      `| ${n(s.keys)} | ${rs.length} | ${n(median(rs.map((x) => x.pipelineKeysPerSec)))} | ${n(median(rs.map((x) => x.bulkHelperDocsPerSec)))} | ${spread(
        rs.map((x) => (100 * x.pipelineKeysPerSec) / x.bulkHelperDocsPerSec),
        0,
        ' %',
      )} | ${n(median(rs.map((x) => x.connectorKeysPerSec)))} (N = ${n(s.connectorKeys)}) | ${spread(
        rs.map((x) => x.pipelineKeysPerSec / x.connectorKeysPerSec),
        1,
        ' ×',
      )} | ${n(s.naiveKeysPerSec)} (N = ${n(s.naiveKeys)}) | ${n(median(rs.map((x) => x.pipelineKeysPerSec)) / s.naiveKeysPerSec, 1)} × | ${spread(
        rs.map((x) => tool(x.pipelineCpuUsPerKey)),
        1,
      )} |`,
    );
  }
  lines.push(
    '',
    `Per round: keys/s, CPU µs per key by process, and the 1-minute load average during each run (max, on ${cpus().length} cores; **busy** when above the core count).`,
    '',
    '| keys | round | redis-es-sync keys/s | CPU µs/key: worker, source Redis, queue Redis, producer = tool; Elasticsearch | load | (a) docs/s | (a) CPU µs/key: harness; Elasticsearch | load | (c) keys/s | (c) CPU µs/key: harness, source Redis; Elasticsearch | load |',
    '| ---: | ---: | ---: | --- | ---: | ---: | --- | ---: | ---: | --- | ---: |',
  );
  const us = (m: Record<string, number>, p: string): string => n(m[p] ?? NaN, 1);
  for (const s of runs)
    s.rounds.forEach((x, i) => {
      const p = x.pipelineCpuUsPerKey;
      lines.push(
        `| ${n(s.keys)} | ${i + 1} | ${n(x.pipelineKeysPerSec)} | ${us(p, 'worker')}, ${us(p, 'source redis')}, ${us(p, 'queue redis')}, ${us(p, 'snapshot producer')} = ${n(tool(p), 1)}; ${us(p, 'elasticsearch')} | ${n(x.load.pipeline.max, 2)}${busy(x.load.pipeline)} | ${n(x.bulkHelperDocsPerSec)} | ${us(x.bulkHelperCpuUsPerKey, 'harness')}; ${us(x.bulkHelperCpuUsPerKey, 'elasticsearch')} | ${n(x.load.bulkHelper.max, 2)}${busy(x.load.bulkHelper)} | ${n(x.connectorKeysPerSec)} | ${us(x.connectorCpuUsPerKey, 'harness')}, ${us(x.connectorCpuUsPerKey, 'source redis')}; ${us(x.connectorCpuUsPerKey, 'elasticsearch')} | ${n(x.load.connector.max, 2)}${busy(x.load.connector)} |`,
      );
    });
  const last = runs.at(-1);
  if (last) {
    const processes = Object.keys(last.rounds[0]?.pipelineCpuUsPerKey ?? {});
    lines.push(
      '',
      `Median CPU µs per key of redis-es-sync in the ${n(last.keys)}-key rounds — ${processes
        .map((p) => `${p} ${n(median(last.rounds.map((x) => x.pipelineCpuUsPerKey[p] ?? NaN)), 1)}`)
        .join(', ')}.`,
    );
  }
  return lines;
}

function median(xs: readonly number[]): number {
  const sorted = [...xs].sort((x, y) => x - y);
  const mid = sorted.length >> 1;
  if (sorted.length === 0) return NaN;
  return sorted.length % 2 ? itemAt(sorted, mid) : (itemAt(sorted, mid - 1) + itemAt(sorted, mid)) / 2;
}

function renderEngines(
  date: string,
  machine: string,
  smoke: boolean,
  sizes: Sizes,
  runs: readonly EngineRun[],
  failures: readonly string[],
): string {
  const lines: string[] = [
    `Run ${date.slice(0, 16).replace('T', ' ')} UTC on ${machine}, one engine at a time${smoke ? ' — SMOKE SIZES, not a measurement' : ''}.`,
    '',
  ];
  const load = (r: EngineRun): string => `${n(r.load.before, 2)} → ${n(r.load.after ?? NaN, 2)}`;
  const snapshots = runs.filter((r) => r.snapshot);
  if (snapshots.length > 0) {
    lines.push(
      "### Per engine: snapshot against the engine's own bulk limit",
      '',
      `Snapshot of ${n(sizes.engineKeys)} keys, one worker process; ${sizes.engineRounds} rounds, each running the engine's own client's bulk helper (5 MB requests, 2 in flight, no Redis, no queue) and the pipeline on the same data, their order swapped every round. Medians of the rounds; the ratio is the median of each round's ratio. CPU µs/key: the tool's processes (worker, source Redis, queue Redis, snapshot producer) and the engine, during the pipeline run.`,
      '',
      '| engine | version | keys | redis-es-sync (keys/s) | bulk limit (docs/s) | ratio | CPU µs/key, tool | CPU µs/key, engine | load average |',
      '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |',
    );
    for (const r of snapshots) {
      const s = r.snapshot;
      if (!s) continue;
      const tool = s.rounds.map((x) =>
        Object.entries(x.cpuUsPerKey)
          .filter(([p]) => p !== 'engine')
          .reduce((a, [, us]) => a + us, 0),
      );
      lines.push(
        `| ${r.name} | ${r.version} | ${n(s.keys)} | ${n(median(s.rounds.map((x) => x.pipeline)))} | ${n(median(s.rounds.map((x) => x.bulkHelper)))} | ${n(median(s.rounds.map((x) => (100 * x.pipeline) / x.bulkHelper)))} % | ${n(median(tool), 1)} | ${n(median(s.rounds.map((x) => x.cpuUsPerKey.engine ?? NaN)), 1)} | ${load(r)} |`,
      );
    }
    lines.push('', 'Median CPU µs/key per process —');
    for (const r of snapshots) {
      const s = r.snapshot;
      if (!s) continue;
      const processes = Object.keys(s.rounds[0]?.cpuUsPerKey ?? {});
      lines.push(
        `- ${r.name}: ${processes.map((p) => `${p} ${n(median(s.rounds.map((x) => x.cpuUsPerKey[p] ?? 0)), 1)}`).join(', ')}; rounds (keys/s pipeline / bulk limit): ${s.rounds.map((x) => `${n(x.pipeline)} / ${n(x.bulkHelper)}`).join(', ')}`,
      );
    }
    lines.push('');
  }
  const lives = runs.filter((r) => r.live);
  if (lives.length > 0) {
    lines.push(
      '### Per engine: live changes, capture-to-indexed latency',
      '',
      `One worker process; a load generator writes for ${n(sizes.engineLiveMs / 1000, 1)} s at each rate.`,
      '',
      '| engine | target changes/s | achieved changes/s | sampled | p50 ms | p95 ms | p99 ms | drain after load (ms) | kept up |',
      '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | :---: |',
    );
    for (const r of lives)
      for (const s of r.live ?? [])
        lines.push(
          `| ${r.name} | ${s.targetRate === 0 ? 'max' : n(s.targetRate)} | ${n(s.achievedRate)} | ${n(s.probes)} | ${n(s.p50)} | ${n(s.p95)} | ${n(s.p99)} | ${n(s.drainMs)} | ${s.keptUp ? 'yes' : 'no'} |`,
        );
    lines.push('');
  }
  for (const f of failures) lines.push(`**Scenario failed** — ${f}`, '');
  return lines.join('\n');
}

function log(msg: string): void {
  process.stderr.write(`[bench] ${msg}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`[bench] ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
