import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * The process's Prometheus metrics, served on `/metrics`. Counters count what this process
 * did (a producer its captures, a worker its jobs); Prometheus sums them over the pods.
 * Instrumented code updates them once per batch, bulk or job, never once per change.
 */
export const registry = new Registry();

const PREFIX = 'redis_es_sync_';

export const changesCaptured = new Counter({
  name: `${PREFIX}changes_captured_total`,
  help: 'Live changes captured, per capture mode (repeats of a key before a flush included)',
  labelNames: ['mode'] as const,
  registers: [registry],
});

export const jobsEnqueued = new Counter({
  name: `${PREFIX}jobs_enqueued_total`,
  help: 'Jobs added to the queue, by how the change was seen (notification, snapshot, reconcile, resync, repair) and queue partition (BullMQ queue name)',
  labelNames: ['src', 'partition'] as const,
  registers: [registry],
});

export const keysEnqueued = new Counter({
  name: `${PREFIX}keys_enqueued_total`,
  help: 'Keys carried by the jobs added to the queue, by how the change was seen and queue partition',
  labelNames: ['src', 'partition'] as const,
  registers: [registry],
});

export const jobsCompleted = new Counter({
  name: `${PREFIX}jobs_completed_total`,
  help: 'Jobs this worker indexed, per queue partition (BullMQ queue name)',
  labelNames: ['partition'] as const,
  registers: [registry],
});

export const jobsFailed = new Counter({
  name: `${PREFIX}jobs_failed_total`,
  help: 'Jobs this worker moved to the failed set (malformed job data, attempts exhausted); refused keys are counted by keys_refused_total',
  labelNames: ['partition'] as const,
  registers: [registry],
});

export const jobsRefused = new Counter({
  name: `${PREFIX}jobs_refused_total`,
  help: 'Jobs failed unread because their database or keys are not synced by the configuration',
  registers: [registry],
});

export const jobsRetried = new Counter({
  name: `${PREFIX}jobs_retried_total`,
  help: "Job runs that were not the job's first: automatic retries, stalled jobs taken over, replays",
  registers: [registry],
});

export const bulkDuration = new Histogram({
  name: `${PREFIX}bulk_request_duration_seconds`,
  help: 'Duration of _bulk requests to Elasticsearch, by outcome (ok, retry: transient failure, error: refused)',
  labelNames: ['outcome'] as const,
  buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
  registers: [registry],
});

export const bulkDocuments = new Histogram({
  name: `${PREFIX}bulk_documents`,
  help: 'Operations (index or delete) per _bulk request',
  buckets: [1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000],
  registers: [registry],
});

export const captureToIndexed = new Histogram({
  name: `${PREFIX}capture_to_indexed_seconds`,
  help: 'From capture (job data `t`) to the job being indexed, by how the change was seen',
  labelNames: ['src'] as const,
  buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800],
  registers: [registry],
});

export const outboxMalformed = new Counter({
  name: `${PREFIX}outbox_malformed_total`,
  help: 'Outbox entries skipped as malformed (part=entry): no `key` field, or a `db` that is not one of redis.databases',
  labelNames: ['part'] as const,
  registers: [registry],
});

export const reconciliationGaps = new Counter({
  name: `${PREFIX}reconciliation_gaps_total`,
  help: 'Capture gaps (notification subscription lost and regained) that triggered a reconciliation',
  registers: [registry],
});

export const flushesDetected = new Counter({
  name: `${PREFIX}flushes_detected_total`,
  help: 'FLUSHDB/FLUSHALL announced by a source master (client tracking), each followed by a reconciliation',
  registers: [registry],
});

export const deletionsRefused = new Gauge({
  name: `${PREFIX}deletions_refused`,
  help: 'Deletes the last reconciliation held back for producer.deletionGuard (at least this many), by index; 0 once a pass is within the limit',
  labelNames: ['index'] as const,
  registers: [registry],
});

export const reconciliations = new Counter({
  name: `${PREFIX}reconciliations_total`,
  help: 'Full reconciliations completed',
  registers: [registry],
});

/** The job states the queue depth gauge reports. */
export const DEPTH_STATES = ['waiting', 'active', 'delayed', 'failed'] as const;
export type DepthState = (typeof DEPTH_STATES)[number];
/** Per queue partition (its BullMQ queue name), its job counts. */
export type DepthSource = () => Promise<{ partition: string; counts: Partial<Record<DepthState, number>> }[]>;

let depthSource: DepthSource | undefined;
/** A scrape never waits longer than this for the queue Redis; the gauge keeps its last values. */
const DEPTH_TIMEOUT_MS = 2000;

/** The answer, or undefined when it fails or takes longer than a scrape may wait: the gauge then keeps its last value. */
async function withinScrapeTime<T>(answer: Promise<T>): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), DEPTH_TIMEOUT_MS)));
  try {
    return await Promise.race([answer.catch(() => undefined), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export const queueDepth = new Gauge({
  name: `${PREFIX}queue_jobs`,
  help: 'Jobs in the queue by state and partition (BullMQ queue name), read from the queue Redis at scrape time',
  labelNames: ['state', 'partition'] as const,
  registers: [registry],
  async collect() {
    if (!depthSource) return;
    const partitions = await withinScrapeTime(depthSource());
    if (!partitions) return;
    for (const { partition, counts } of partitions)
      for (const state of DEPTH_STATES) this.set({ state, partition }, counts[state] ?? 0);
  },
});

/** Makes the queue depth gauge read from `source` at each scrape; returns the undo. */
export function watchQueueDepth(source: DepthSource): () => void {
  depthSource = source;
  return () => {
    if (depthSource === source) depthSource = undefined;
  };
}

/** Per queue partition (its BullMQ queue name), whether it is paused. */
export type PausedSource = () => Promise<{ partition: string; paused: boolean }[]>;

let pausedSource: PausedSource | undefined;

/** A paused queue indexes nothing while capture goes on: worth an alert of its own. */
export const queuePaused = new Gauge({
  name: `${PREFIX}queue_paused`,
  help: '1 while the queue partition is paused (workers take no job from it), read from the queue Redis at scrape time',
  labelNames: ['partition'] as const,
  registers: [registry],
  async collect() {
    if (!pausedSource) return;
    const partitions = await withinScrapeTime(pausedSource());
    for (const { partition, paused } of partitions ?? []) this.set({ partition }, paused ? 1 : 0);
  },
});

/** Makes the paused gauge read from `source` at each scrape; returns the undo. */
export function watchQueuePaused(source: PausedSource): () => void {
  pausedSource = source;
  return () => {
    if (pausedSource === source) pausedSource = undefined;
  };
}

let defaultsOn = false;
/** Process metrics (CPU, memory, event loop lag, GC); started with the HTTP surface, once per process. */
export function enableDefaultMetrics(): void {
  if (defaultsOn) return;
  defaultsOn = true;
  collectDefaultMetrics({ register: registry });
  // prom-client names these gauges `*_total`, which Prometheus reserves for counters (promtool
  // check metrics refuses them); their per-type series without the suffix carry the same counts.
  for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'])
    registry.removeSingleMetric(name);
}

export const searchCache = new Counter({
  name: `${PREFIX}search_cache_total`,
  help: 'Searches answered from the cache (hit) or by Elasticsearch (miss)',
  labelNames: ['result'] as const,
  registers: [registry],
});

export const searchDuration = new Histogram({
  name: `${PREFIX}search_duration_seconds`,
  help: 'Duration of GET /search requests, by whether the cache answered (hit, miss)',
  labelNames: ['cache'] as const,
  buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
  registers: [registry],
});

export const keysRefused = new Counter({
  name: `${PREFIX}keys_refused_total`,
  help: 'Keys this worker could not index (a refused stub was written in their place), by reason class (Elasticsearch error type, too_large, not_json, transform, coerce, bulk_rejected, other)',
  labelNames: ['class'] as const,
  registers: [registry],
});

export const dependencyUp = new Gauge({
  name: `${PREFIX}dependency_up`,
  help: 'Whether the process could reach each dependency at its last check (1) or is waiting for it (0): source-redis, queue-redis, elasticsearch',
  labelNames: ['dependency'] as const,
  registers: [registry],
});

/** Per index being rebuilt, the share of its keys written into the new generation. */
export type RebuildProgressSource = () => Promise<{ index: string; ratio: number }[]>;

let rebuildSource: RebuildProgressSource | undefined;

export const rebuildProgress = new Gauge({
  name: `${PREFIX}rebuild_progress_ratio`,
  help: 'Share of the keys a running rebuild has written into the new generation of an index (0 to 1; 1 from its verify on), read from the queue Redis at scrape time',
  labelNames: ['index'] as const,
  registers: [registry],
  async collect() {
    if (!rebuildSource) return;
    const running = await withinScrapeTime(rebuildSource());
    if (!running) return;
    // A finished rebuild's series goes away instead of staying at its last value.
    this.reset();
    for (const { index, ratio } of running) this.set({ index }, ratio);
  },
});

/** Makes the rebuild gauge read from `source` at each scrape; returns the undo. */
export function watchRebuildProgress(source: RebuildProgressSource): () => void {
  rebuildSource = source;
  return () => {
    if (rebuildSource === source) rebuildSource = undefined;
  };
}

export const freshness = new Gauge({
  name: `${PREFIX}freshness_seconds`,
  help: 'Freshness canary: from writing a heartbeat key into the source until its document is searchable (the newest one found), or the age of the oldest heartbeat not yet found if that is more; per shard (Cluster master node ID, `source` otherwise)',
  labelNames: ['shard'] as const,
  registers: [registry],
});

export const captureLeader = new Gauge({
  name: `${PREFIX}capture_leader`,
  help: '1 while this producer captures the shard under its lease (`all`: the single producer lease; a Cluster master node ID under sharded capture), 0 while it stands by',
  labelNames: ['shard'] as const,
  registers: [registry],
});

export const captureShards = new Gauge({
  name: `${PREFIX}capture_shards`,
  help: 'Capture leases that should be held, as this producer last counted them: 1 for the single producer lease, the Cluster masters under sharded capture',
  registers: [registry],
});

export const reconciliationsFailed = new Counter({
  name: `${PREFIX}reconciliations_failed_total`,
  help: 'Full reconciliations that failed with an error (a lost lease and a stop are not failures)',
  registers: [registry],
});

export const reconciliationLastSuccess = new Gauge({
  name: `${PREFIX}reconciliation_last_success_timestamp_seconds`,
  help: 'When this process last completed a full reconciliation (Unix time)',
  registers: [registry],
});
