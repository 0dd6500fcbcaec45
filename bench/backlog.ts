import { unfinishedJobs, type SyncQueues } from '../shared/core/queue';
import { startPipelineProcesses } from './live';
import { connect, itemAt, pidOf, resetServers, rssBytes, sleep, type BenchEnv, type CliProcess } from './support';

const INDEX = 'bench-backlog';

export interface MemoryResult {
  /** Changed keys waiting in the queue. */
  changes: number;
  jobs: number;
  producerPeakRss: number;
  workerPeakRss: number;
  queueRedisBytes: number;
  concurrency: number;
}

/** Keys in the jobs not yet finished, read a page of jobs at a time. */
async function queuedKeys(queues: SyncQueues): Promise<number> {
  let keys = 0;
  for (const queue of queues.partitions) {
    for (let from = 0; ; from += 1000) {
      const jobs = await queue.getJobs(['waiting', 'active', 'prioritized', 'delayed'], from, from + 999);
      // A job that completes between BullMQ's listing and its load comes back as undefined (typed Job).
      // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition -- see above
      for (const job of jobs) keys += job?.data.keys.length ?? 0;
      if (jobs.length < 1000) break;
    }
  }
  return keys;
}

/**
 * A backlog of `changes` changed keys built while Elasticsearch is paused (SIGSTOP): the producer keeps
 * enqueueing, the worker holds what it took and retries; both processes' RSS is sampled.
 */
export async function memoryScenario(env: BenchEnv, changes: number, concurrency = 100): Promise<MemoryResult> {
  const c = connect(env);
  let procs: CliProcess[] = [];
  let paused = false;
  try {
    await resetServers(c, `${INDEX}*`);
    // A subscriber that falls behind a burst of a million writes would be cut off at the
    // default 32 MB pub/sub output buffer (and reconcile); here the backlog itself is measured.
    await c.source.config('SET', 'client-output-buffer-limit', 'pubsub 512mb 512mb 0');
    // The table counts the changes queued: no heartbeats beside the generated ones.
    procs = await startPipelineProcesses(env, INDEX, 1, {
      worker: { concurrency },
      producer: { canary: { enabled: false } },
    });
    // startPipelineProcesses starts the producer, then `workers` (here 1) workers.
    const [producer, worker] = [itemAt(procs, 0), itemAt(procs, 1)];
    process.kill(env.pids.es, 'SIGSTOP');
    paused = true;
    let producerPeak = 0;
    let workerPeak = 0;
    const sample = (): void => {
      producerPeak = Math.max(producerPeak, rssBytes(pidOf(producer)));
      workerPeak = Math.max(workerPeak, rssBytes(pidOf(worker)));
    };
    const sampler = setInterval(sample, 100);
    try {
      for (let i = 0; i < changes; i += 5000) {
        const pipe = c.source.pipeline();
        for (let j = i; j < Math.min(i + 5000, changes); j++)
          pipe.hset(`backlog:${j}`, 'n', String(j), 'note', 'queued while Elasticsearch is paused');
        await pipe.exec();
      }
      // Jobs carry many keys each: the backlog is complete once every changed key is in one.
      const deadline = Date.now() + 10 * 60_000;
      for (let queued = await queuedKeys(c.queue); queued < changes; queued = await queuedKeys(c.queue)) {
        if (Date.now() > deadline) throw new Error(`only ${queued} of ${changes} changes queued`);
        await sleep(1000);
      }
      await sleep(2000);
      sample();
    } finally {
      clearInterval(sampler);
    }
    const info = await c.queueRedis.info('memory');
    const queueRedisBytes = Number(/used_memory:(\d+)/.exec(info)?.[1] ?? 0);
    const jobs = await unfinishedJobs(c.queue);
    return {
      changes: await queuedKeys(c.queue),
      jobs,
      producerPeakRss: producerPeak,
      workerPeakRss: workerPeak,
      queueRedisBytes,
      concurrency,
    };
  } finally {
    if (paused) process.kill(env.pids.es, 'SIGCONT');
    // The backlog is dropped, not drained: what is measured is the wait, not the catch-up.
    for (const p of procs) p.child.kill('SIGKILL');
    await c.queueRedis.flushall();
    await c.close();
  }
}
