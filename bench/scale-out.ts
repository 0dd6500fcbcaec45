import { Cluster, Redis } from 'ioredis';
import { ConfigSchema, type ConfigInput } from '../producers/capture/registry';
import { SyncQueues, unfinishedJobs } from '../shared/core/queue';
import { connectEndpoint, endpointOf } from '../shared/platform/redis';
import { startRedisCluster, type RedisClusterHandle } from '../test/support/redis-cluster';
import {
  benchConfig,
  connect,
  cpuMeter,
  drained,
  pidOf,
  resetServers,
  sleep,
  startCli,
  waitForOutput,
  type BenchEnv,
  type CliProcess,
} from './support';

const INDEX = 'bench-scaleout';
/** Hash-tagged, as a queue in a Redis Cluster needs; the partitions put their own tag after it. */
const QUEUE_PREFIX = '{bench-scaleout}';
/** Commands that are the clients' housekeeping (and this scenario's own INFO), not the queue's work. */
const HOUSEKEEPING = new Set(['info', 'config', 'cluster', 'ping', 'client', 'hello', 'select', 'command', 'readonly']);

export interface ScaleOutOptions {
  /** Changes per second the load generator writes, the same in every run. */
  rate: number;
  durationMs: number;
  keyspace: number;
  partitions: readonly number[];
  shards: readonly number[];
}

/** One run with the queue in a 3-master Cluster: the queue commands each master served. */
export interface QueueSpreadRun {
  partitions: number;
  changes: number;
  seconds: number;
  /** Queue commands each master served for the load (until drained), per second of load; masters by port. */
  perMaster: number[];
}

/** One run with a 3-master Cluster source captured by `producers` sharded-capture producers. */
export interface CaptureShardRun {
  producers: number;
  /** Masters each producer captured during the load. */
  mastersHeld: number[];
  changes: number;
  seconds: number;
  /** CPU µs each producer used per change captured (by all of them). */
  cpuUsPerChange: number[];
  /** CPU each producer used per second with no change to capture (lease renewals, topology refresh), in µs. */
  idleCpuUsPerSec: number[];
}

export interface ScaleOutResult {
  rate: number;
  durationMs: number;
  queue: QueueSpreadRun[];
  capture: CaptureShardRun[];
}

/**
 * The two halves of scaling out at one fixed change rate: the queue in a 3-master Redis Cluster
 * with 1 and with more partitions (how the queue commands spread over its masters, from INFO
 * commandstats of each), and a 3-master Cluster source captured by 1 and more producers with
 * sharded capture (how the producer CPU per change splits between them).
 */
export async function scaleOutScenario(env: BenchEnv, opts: ScaleOutOptions): Promise<ScaleOutResult> {
  const result: ScaleOutResult = { rate: opts.rate, durationMs: opts.durationMs, queue: [], capture: [] };
  const queueCluster = await startRedisCluster({ masters: 3, replicasPerMaster: 0 });
  try {
    for (const partitions of opts.partitions) result.queue.push(await queueSpread(env, queueCluster, partitions, opts));
  } finally {
    await queueCluster.stop();
  }
  const sourceCluster = await startRedisCluster({ masters: 3, replicasPerMaster: 0 });
  try {
    for (const producers of opts.shards) result.capture.push(await captureShards(env, sourceCluster, producers, opts));
  } finally {
    await sourceCluster.stop();
  }
  return result;
}

async function queueSpread(
  env: BenchEnv,
  cluster: RedisClusterHandle,
  partitions: number,
  opts: ScaleOutOptions,
): Promise<QueueSpreadRun> {
  const c = connect(env);
  const masters = (await cluster.masterPorts()).map((port) => new Redis(port, '127.0.0.1'));
  const queueInput = { cluster: { nodes: cluster.urls }, prefix: QUEUE_PREFIX, partitions, keepCompleted: 0 };
  const input: ConfigInput = { ...benchConfig(env, `${INDEX}-p${partitions}`), queue: queueInput };
  const config = ConfigSchema.parse(input);
  const queueRedis = connectEndpoint(endpointOf(config.queue), { name: 'bench-scaleout', forBullmq: true });
  const queue = SyncQueues.create(config, queueRedis);
  const procs: CliProcess[] = [];
  try {
    await resetServers(c, `${INDEX}*`);
    await Promise.all(masters.map((m) => m.flushall()));
    const worker = startCli(input, ['worker']);
    procs.push(worker);
    await waitForOutput(worker, 'worker started');
    const producer = startCli(input, ['producer']);
    procs.push(producer);
    await waitForOutput(producer, 'capturing keyspace notifications');
    await sleep(500);
    const before = await Promise.all(masters.map(queueCommands));
    const load = await writeAtRate(opts, (keys) => {
      const pipe = c.source.pipeline();
      for (const k of keys) pipe.set(k, 'x');
      return pipe.exec();
    });
    // Until the worker has done every job of the load: a worker lagging behind (a cold start on
    // a busy machine) must not make the commands look fewer. The polls cost a few commands a second.
    await waitDrained(queue, 120_000);
    const after = await Promise.all(masters.map(queueCommands));
    return {
      partitions,
      changes: load.changes,
      seconds: load.seconds,
      perMaster: after.map((n, i) => (n - (before[i] ?? 0)) / load.seconds),
    };
  } finally {
    await Promise.all(procs.map((p) => p.stop()));
    await queue.close();
    queueRedis.disconnect();
    for (const m of masters) m.disconnect();
    await c.close();
  }
}

async function captureShards(
  env: BenchEnv,
  cluster: RedisClusterHandle,
  producers: number,
  opts: ScaleOutOptions,
): Promise<CaptureShardRun> {
  const c = connect(env);
  const masters = (await cluster.masterPorts()).map((port) => new Redis(port, '127.0.0.1'));
  const source = new Cluster(
    cluster.urls.map((url) => ({ host: '127.0.0.1', port: Number(new URL(url).port) })),
    { enableAutoPipelining: true },
  );
  const base = benchConfig(env, `${INDEX}-s${producers}`);
  const input: ConfigInput = {
    ...base,
    redis: { cluster: { nodes: cluster.urls } },
    producer: {
      ...base.producer,
      shardedCapture: true,
      leaseTtlMs: 3000,
      leaseRenewMs: 500,
      topologyRefreshMs: 1000,
      deletionGuard: { maxShare: 1 },
    },
  };
  const procs: CliProcess[] = [];
  try {
    await resetServers(c, `${INDEX}*`);
    await Promise.all(masters.map((m) => m.flushall()));
    const worker = startCli(input, ['worker']);
    procs.push(worker);
    await waitForOutput(worker, 'worker started');
    const capture = Array.from({ length: producers }, () => startCli(input, ['producer']));
    procs.push(...capture);
    const held = await settledShares(capture, masters.length);
    const pids = Object.fromEntries(capture.map((p, i) => [String(i), pidOf(p)]));
    // What a producer costs when nothing changes, so the cost of a change can be told apart from it.
    const idleMs = Math.max(1000, opts.durationMs / 3);
    const idle = cpuMeter(pids);
    await sleep(idleMs);
    const idleUsed = idle();
    const cpu = cpuMeter(pids);
    const load = await writeAtRate(opts, (keys) => Promise.all(keys.map((k) => source.set(k, 'x'))));
    // The producers' last flush of what they captured.
    await sleep(500);
    const used = cpu();
    await drained(c.queue, 120_000);
    return {
      producers,
      mastersHeld: held,
      changes: load.changes,
      seconds: load.seconds,
      cpuUsPerChange: capture.map((_, i) => ((used[String(i)] ?? 0) * 1e6) / load.changes),
      idleCpuUsPerSec: capture.map((_, i) => ((idleUsed[String(i)] ?? 0) * 1e9) / idleMs),
    };
  } finally {
    await Promise.all(procs.map((p) => p.stop()));
    source.disconnect();
    for (const m of masters) m.disconnect();
    await c.close();
  }
}

/** SETs `rate` times a second for `durationMs` on keys drawn from the keyspace. */
async function writeAtRate(
  opts: ScaleOutOptions,
  write: (keys: string[]) => Promise<unknown>,
): Promise<{ changes: number; seconds: number }> {
  let sent = 0;
  const started = performance.now();
  for (let now = started; now - started < opts.durationMs; now = performance.now()) {
    const due = Math.floor((opts.rate * (now - started)) / 1000) - sent;
    if (due > 0) {
      const keys = Array.from({ length: due }, () => `scale:${Math.floor(Math.random() * opts.keyspace)}`);
      await write(keys);
      sent += due;
    }
    await sleep(5);
  }
  return { changes: sent, seconds: (performance.now() - started) / 1000 };
}

/**
 * Waits until the producers' shard leases settled: every master captured, each producer
 * holding at least one, the same for a second; resolves to the masters each holds.
 */
async function settledShares(capture: readonly CliProcess[], masters: number, timeoutMs = 60_000): Promise<number[]> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  let since = Date.now();
  for (;;) {
    const held = capture.map((p) => {
      if (p.child.exitCode !== null) throw new Error(`a producer exited:\n${p.output()}`);
      return heldShards(p.output());
    });
    const now = JSON.stringify(held);
    if (now !== last) {
      last = now;
      since = Date.now();
    }
    const settled = held.reduce((a, b) => a + b, 0) === masters && held.every((n) => n > 0);
    if (settled && Date.now() - since >= 1000) return held;
    if (Date.now() > deadline) throw new Error(`shard leases did not settle: ${now} of ${masters} masters`);
    await sleep(100);
  }
}

/** Shards a producer's log says it captures now: captures started less those stopped. */
function heldShards(output: string): number {
  const count = (msg: string): number => output.split(`"msg":"${msg}"`).length - 1;
  return count('shard capture started under its lease') - count('shard capture stopped');
}

async function waitDrained(queue: SyncQueues, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while ((await unfinishedJobs(queue)) > 0) {
    if (Date.now() > deadline) throw new Error(`the partitioned queue did not drain within ${timeoutMs} ms`);
    await sleep(500);
  }
}

/** The queue's commands a master has served so far (housekeeping left out). */
async function queueCommands(node: Redis): Promise<number> {
  const text = await node.info('commandstats');
  let total = 0;
  for (const [, command, calls] of text.matchAll(/^cmdstat_([^:|]+)[^:]*:calls=(\d+)/gm))
    if (command !== undefined && !HOUSEKEEPING.has(command)) total += Number(calls);
  return total;
}

/** The scenario's section of the report. */
export function renderScaleOut(r: ScaleOutResult, n: (x: number, digits?: number) => string): string[] {
  const lines = [
    '### Scale-out: partitioned queues and sharded capture',
    '',
    `A load generator writes ${n(r.rate)} changes/s for ${n(r.durationMs / 1000, 1)} s (SETs on random keys).`,
    '',
    'Queue in a 3-master Redis Cluster, a standalone source, one producer and one worker: the queue commands each master served for the load, from its start until the worker had done every job, per second of load (INFO commandstats of each master, housekeeping left out).',
    '',
    '| partitions | changes/s | master 1 | master 2 | master 3 | total | per change | busiest master |',
    '| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const q of r.queue) {
    const total = q.perMaster.reduce((a, b) => a + b, 0);
    const busiest = Math.max(...q.perMaster);
    lines.push(
      `| ${q.partitions} | ${n(q.changes / q.seconds)} | ${q.perMaster.map((x) => n(x)).join(' | ')} | ${n(total)} | ${n((total * q.seconds) / q.changes, 1)} | ${n((100 * busiest) / total)} % |`,
    );
  }
  lines.push(
    '',
    "A 3-master Redis Cluster source with sharded capture, a standalone queue and one worker: producer CPU time per change (/proc stat of each producer process, from the start of the load to its last flush), and what the producers use when nothing changes (measured before the load, taken out of the last column's cost per change).",
    '',
    '| capture producers | masters held | changes/s | CPU µs/change, all producers | per producer | busiest producer (% of a core) | idle, all producers (% of a core) | CPU µs/change above idle |',
    '| ---: | --- | ---: | ---: | --- | ---: | ---: | ---: |',
  );
  for (const s of r.capture) {
    const total = s.cpuUsPerChange.reduce((a, b) => a + b, 0);
    const rate = s.changes / s.seconds;
    const busiest = (Math.max(...s.cpuUsPerChange) * rate) / 1e4;
    const idle = s.idleCpuUsPerSec.reduce((a, b) => a + b, 0);
    lines.push(
      `| ${s.producers} | ${s.mastersHeld.join(' + ')} | ${n(rate)} | ${n(total, 1)} | ${s.cpuUsPerChange.map((x) => n(x, 1)).join(' / ')} | ${n(busiest, 1)} % | ${n(idle / 1e4, 1)} % | ${n(total - idle / rate, 1)} |`,
    );
  }
  lines.push('');
  return lines;
}
