import { hostname } from 'node:os';
import { UnrecoverableError, Worker, type Job } from 'bullmq';
import type { AppConfig } from '../shared/platform/config/schema';
import type { Sink } from '../shared/sink/port';
import type { Logger } from '../shared/platform/logger';
import { displayKey } from '../shared/core/bytes';
import { FailureStore, reasonClass, type Refusal } from '../shared/core/failure-store';
import {
  captureToIndexed,
  jobsCompleted,
  jobsFailed,
  jobsRefused,
  jobsRetried,
  keysRefused,
} from '../shared/platform/metrics';
import type { KeyRouter } from '../shared/core/mapping/router';
import { SyncQueues, unfinishedJobs, type SyncJobData, type SyncQueue } from '../shared/core/queue';
import { consumedPartitions } from '../shared/core/partitions';
import type { RedisClient, SourceRedis } from '../shared/platform/redis';
import { VersionCounter, versionKey } from '../shared/core/versions';
import { cachedMirrorTargets, readRebuildState } from '../shared/core/rebuild-state';
import { BulkBatcher } from './bulk-batcher';
import { BulkIndexer, type AfterWrite } from './bulk-indexer';
import { jobRefusal } from './job-guard';

export interface IndexWorkerDeps {
  config: AppConfig;
  sink: Sink;
  source: SourceRedis;
  /** Commands on the queue Redis (version counter). */
  queueRedis: RedisClient;
  /** A connection BullMQ may block on (maxRetriesPerRequest: null). */
  bullConnection: RedisClient;
  /** The queue's partitions (to find those of former layouts); default: opened on `bullConnection`. */
  queues?: SyncQueues;
  router: KeyRouter;
  logger: Logger;
  /** Runs after each answered bulk (the CLI invalidates the search cache here). */
  afterWrite?: AfterWrite;
}

export interface IndexWorker {
  /** The BullMQ workers running, one per queue consumed (partitions, and former layouts being drained). */
  workers(): Worker<SyncJobData, void>[];
  /** Stops taking jobs, finishes the active ones, closes the BullMQ workers. */
  close(): Promise<void>;
}

/** Refused keys named in a job's log line; the failure store holds all of them. */
const REFUSED_LOGGED = 20;

export function startIndexWorker(deps: IndexWorkerDeps): IndexWorker {
  const { config, logger } = deps;
  const abort = new AbortController();
  const log = logger.child({ component: 'worker', queue: config.queue.name });
  const indexer = new BulkIndexer({
    sink: deps.sink,
    source: deps.source,
    counter: new VersionCounter(deps.queueRedis, versionKey(config.queue.prefix)),
    router: deps.router,
    settings: config.worker,
    afterWrite: deps.afterWrite,
    logger: log,
    signal: abort.signal,
    mirrors: cachedMirrorTargets(() => readRebuildState(deps.queueRedis, config.queue.prefix)),
  });
  const batcher = new BulkBatcher((items) => indexer.index(items), {
    maxDocs: config.worker.bulkMaxDocs,
    flushMs: config.worker.flushMs,
    maxInflight: config.worker.maxInflightBulks,
  });

  const failures = new FailureStore(deps.queueRedis, config.queue.prefix);

  const processor = async (job: Job<SyncJobData, void>): Promise<void> => {
    const data = checkJobData(job.data);
    const refusal = jobRefusal(data, config.redis.databases, deps.router, config.queue.prefix);
    if (refusal) {
      jobsRefused.inc();
      log.warn({ jobId: job.id, db: data.db, keys: data.keys.length, src: data.src, reason: refusal }, 'job refused');
      throw new UnrecoverableError(refusal);
    }
    if (job.attemptsStarted > 1) jobsRetried.inc();
    const results = await batcher.submit(data.keys.map((key) => ({ db: data.db, key })));
    const refused: Refusal[] = [];
    const indexed: { db: number; key: string }[] = [];
    results.forEach((r, i) => {
      const key = data.keys[i];
      if (key === undefined) return; // the batcher answers one result per key submitted
      if (!r.ok)
        refused.push({ db: data.db, key, index: deps.router.route(data.db, key)?.index ?? '', reason: r.reason });
      // A 409 means another write, newer than this one, decided the key's state: that write's worker owns its record.
      else if (r.result !== 'already-newer') indexed.push({ db: data.db, key });
    });
    // Refusals are kept per key, not per job: the job's other keys are done, and a key refused
    // again (by every reconciliation, say) updates its one record instead of adding a failed job.
    // If the queue Redis cannot take the update, the job fails and is retried: it re-reads its keys.
    await failures.update(refused, indexed);
    if (refused.length > 0) {
      for (const r of refused) keysRefused.inc({ class: reasonClass(r.reason) });
      log.warn(
        {
          jobId: job.id,
          db: data.db,
          refused: refused.length,
          keys: refused.slice(0, REFUSED_LOGGED).map((r) => displayKey(r.key)),
          reason: refused[0]?.reason,
        },
        'keys refused; recorded in the failure store (redis-es-sync failures)',
      );
    }
    const lagMs = Date.now() - data.t;
    // Job data comes back from Redis unchecked: a job queued by hand or by an older producer may lack src.
    // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition -- see above
    if (Number.isFinite(lagMs)) captureToIndexed.observe({ src: data.src ?? 'unknown' }, lagMs / 1000);
    log.debug({ jobId: job.id, db: data.db, keys: data.keys.length, refused: refused.length, lagMs }, 'job indexed');
  };

  const queues = deps.queues ?? SyncQueues.create(config, deps.bullConnection, log);
  const ownQueues = !deps.queues;
  const consumed = consumedPartitions(queues.count, config.worker.partitions);
  // Each queue consumed takes an equal share of `concurrency`: jobs of all partitions meet in
  // the one bulk batcher, so what Elasticsearch sees is bounded by it, not by the queue count.
  const share = Math.max(1, Math.ceil(config.worker.concurrency / consumed.length));
  const running = new Map<SyncQueue, Worker<SyncJobData, void>>();

  const consume = (queue: SyncQueue): Worker<SyncJobData, void> => {
    const partition = queue.name;
    const worker = new Worker<SyncJobData, void, string>(queue.name, processor, {
      connection: deps.bullConnection,
      // Shown as the job's processedBy, so an operator sees which pod handled it.
      name: `${hostname()}:${process.pid}`,
      prefix: queue.opts.prefix,
      concurrency: share,
      lockDuration: config.worker.lockDurationMs,
      stalledInterval: config.worker.stalledIntervalMs,
      // Jobs are idempotent (they re-read Redis), so a job orphaned by crashed workers is
      // always safe to run again; never fail it for having stalled.
      maxStalledCount: 1000,
      autorun: true,
    });
    // Exported at 0 from the start, so a rate or an alert on them has a series to look at.
    jobsCompleted.inc({ partition }, 0);
    jobsFailed.inc({ partition }, 0);
    worker.on('completed', () => jobsCompleted.inc({ partition }));
    worker.on('failed', (job, err) => {
      if (!job) return;
      // BullMQ emits 'failed' for every failed attempt; only those with no retry left end in the failed set.
      const final = err.name === 'UnrecoverableError' || job.attemptsMade >= (job.opts.attempts ?? 1);
      if (final) jobsFailed.inc({ partition });
      log.debug({ jobId: job.id, err, final, partition }, 'job failed');
    });
    worker.on('error', (err) => log.error({ err, partition }, 'worker error'));
    running.set(queue, worker);
    return worker;
  };
  for (const p of consumed) {
    const queue = queues.partitions[p];
    if (queue) consume(queue);
  }

  // Queues of another partition count (queue.partitions was changed, or producers still run
  // the old one) are drained while they hold jobs: a worker is started on each that has some,
  // and closed once it is empty again. Every producer records its count before its first job
  // (SyncQueues), so no queue that was ever given a job goes unseen.
  let looking = false;
  let stopped = false;
  const isStopped = (): boolean => stopped;
  const drainFormer = async (): Promise<void> => {
    const former = (await queues.formerCounts()).flatMap((c) => queues.layout(c));
    for (const queue of former) {
      const left = await unfinishedJobs(queue);
      const worker = running.get(queue);
      // close() may have begun during the count: it does not wait for this look (its calls
      // block while the queue Redis is down), so nothing may start after it.
      if (isStopped()) return;
      if (left > 0 && !worker) {
        log.info({ queue: queue.name, jobs: left }, 'draining a queue of another queue.partitions');
        consume(queue);
      } else if (left === 0 && worker) {
        running.delete(queue);
        await worker.close();
        log.info({ queue: queue.name }, 'drained a queue of another queue.partitions');
      }
    }
  };
  // One look at a time: with the queue Redis down a look waits, and looks must not pile up.
  const poll = (): void => {
    if (looking) return;
    looking = true;
    drainFormer()
      .catch((err: unknown) => log.warn({ err }, 'looking for jobs in former partitions failed'))
      .finally(() => {
        looking = false;
      });
  };
  poll();
  const timer = setInterval(poll, config.worker.formerPartitionsPollMs);

  log.debug({ partitions: consumed, of: queues.count, concurrencyEach: share }, 'consuming the queue partitions');

  return {
    workers: () => [...running.values()],
    async close(): Promise<void> {
      stopped = true;
      clearInterval(timer);
      const closing = Promise.all([...running.values()].map((w) => w.close()));
      // Give in-flight bulks the time to finish; if the search engine is down they would retry
      // forever, so after the grace period their jobs are handed back to the queue.
      const grace = setTimeout(() => abort.abort(), 10000);
      try {
        await batcher.drain().catch(() => undefined);
        await closing;
        if (ownQueues) await queues.close();
      } finally {
        clearTimeout(grace);
      }
    },
  };
}

function checkJobData(data: unknown): SyncJobData {
  const d = data as Partial<SyncJobData> | null;
  if (
    !d ||
    typeof d.db !== 'number' ||
    !Array.isArray(d.keys) ||
    !d.keys.every((k) => typeof k === 'string') ||
    typeof d.v !== 'number'
  ) {
    throw new UnrecoverableError(`malformed job data: ${JSON.stringify(data).slice(0, 200)}`);
  }
  return d as SyncJobData;
}
