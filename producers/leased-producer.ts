import type { Logger } from '../shared/platform/logger';
import { captureLeader, captureShards } from '../shared/platform/metrics';
import type { CaptureProducer } from './capture/types';
import type { RedisLease } from './lease';

export interface LeasedProducerDeps {
  lease: RedisLease;
  /** A fresh capture producer for each tenure (a stopped one is not restarted). */
  create: () => CaptureProducer;
  ttlMs: number;
  renewMs: number;
  logger: Logger;
}

/** One term as leader: its capture producer, whose start may still be under way. */
interface Tenure {
  fence: number;
  inner: CaptureProducer;
  started: boolean;
  starting: Promise<void>;
}

/**
 * High availability for any capture mode: several producers may run, only the holder of the
 * lease captures. The others poll and take over once it expires (or is released on a
 * graceful stop). A new leader's producer resumes from what its mode persisted under the
 * previous fences (docs/handover.md). A leader that loses the lease
 * stops capturing and goes back to standby; enqueues go through a fenced queue (`SyncQueues.fenced`) and position
 * writes through the lease, so even a paused leader that has not noticed yet can neither
 * enqueue nor persist a position.
 *
 * The lease is renewed by a timer that runs from the acquisition on, beside the tenure's
 * start (a PSYNC waiting for the master, an RDB of any size): how long a start takes never
 * costs the lease.
 */
export class LeasedProducer implements CaptureProducer {
  private tenure: Tenure | undefined;
  private timer: NodeJS.Timeout | undefined;
  private ticking: Promise<void> | undefined;
  private renewedAt = 0;
  private stopped = false;
  private readonly log: Logger;

  constructor(private readonly deps: LeasedProducerDeps) {
    this.log = deps.logger.child({ component: 'producer-lease', holder: deps.lease.holder });
  }

  /** Leads and its capture has started. */
  get isLeader(): boolean {
    return this.tenure?.started === true;
  }

  /** The capture producer of the current tenure, once started. */
  get current(): CaptureProducer | undefined {
    return this.tenure?.started ? this.tenure.inner : undefined;
  }

  /**
   * Leads at once when the lease is free (errors of the capture producer's start propagate:
   * bad set-up should stop the process), else waits as standby. An unreachable queue Redis
   * only delays: the standby loop keeps trying.
   */
  async start(): Promise<void> {
    // docs/operations.md asks for appendonly on the queue Redis; the hand-over argument assumes queued jobs survive its restart.
    if ((await this.deps.lease.appendOnly()) === false) {
      this.log.warn(
        'the queue Redis runs without appendonly: if it restarts, the jobs it held are lost, and their changes stay missing until a reconciliation (docs/operations.md, "Running it in production")',
      );
    }
    captureShards.set(1);
    captureLeader.set({ shard: 'all' }, 0);
    const asked = Date.now();
    const fence = await this.deps.lease.acquire().catch((err: unknown) => {
      this.log.warn({ err }, 'could not ask for the producer lease; trying again');
      return null;
    });
    this.timer = setInterval(() => this.schedule(), this.deps.renewMs);
    if (fence === undefined) this.log.info('standby: another producer holds the lease');
    if (fence === undefined || fence === null) return;
    try {
      await this.lead(fence, asked);
    } catch (err) {
      clearInterval(this.timer);
      await this.ticking;
      throw err;
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    const tenure = this.tenure;
    try {
      // Everything captured is enqueued while the lease is still ours (renewals go on
      // meanwhile), then it is given up at once.
      if (tenure) {
        await tenure.starting.catch(() => undefined);
        await tenure.inner.stop();
      }
    } finally {
      if (this.timer) clearInterval(this.timer);
      await this.ticking;
    }
    if (!tenure || this.tenure !== tenure) return;
    this.tenure = undefined;
    captureLeader.set({ shard: 'all' }, 0);
    await this.deps.lease
      .release()
      .catch((err: unknown) => this.log.warn({ err }, 'could not release the lease; it expires by itself'));
    this.log.info({ fence: tenure.fence }, 'producer lease released');
  }

  async idle(): Promise<void> {
    await this.current?.idle();
  }

  requestReconcile(): void {
    this.current?.requestReconcile();
  }

  private schedule(): void {
    if (this.ticking) return;
    this.ticking = this.tick().finally(() => {
      this.ticking = undefined;
    });
  }

  private async tick(): Promise<void> {
    const tenure = this.tenure;
    if (!tenure) {
      if (this.stopped) return;
      try {
        await this.tryLead();
      } catch (err) {
        this.log.error({ err }, 'could not ask for the producer lease; trying again');
      }
      return;
    }
    try {
      if (await this.deps.lease.renew()) {
        this.renewedAt = Date.now();
        return;
      }
      await this.stepDown(tenure, 'the lease was taken by another producer, or expired');
    } catch (err) {
      // Unreachable Redis: keep leading while the lease may still be ours, never longer.
      if (Date.now() - this.renewedAt < this.deps.ttlMs) {
        this.log.warn({ err }, 'could not renew the producer lease; retrying');
        return;
      }
      this.deps.lease.forget();
      await this.stepDown(tenure, 'the lease could not be renewed within its TTL');
    }
  }

  /** Takes the lease when free and starts capturing without waiting for the start, so renewals go on. */
  private async tryLead(): Promise<void> {
    const asked = Date.now();
    const fence = await this.deps.lease.acquire();
    if (fence === undefined) return;
    if (this.stopped) {
      await this.deps.lease.release();
      return;
    }
    this.lead(fence, asked).catch((err: unknown) =>
      this.log.error({ err, fence }, 'could not start capturing; back to standby, trying again'),
    );
  }

  private async lead(fence: number, asked: number): Promise<void> {
    this.renewedAt = asked;
    this.log.info({ fence }, 'producer lease acquired: starting capture');
    const inner = this.deps.create();
    const tenure: Tenure = { fence, inner, started: false, starting: inner.start() };
    this.tenure = tenure;
    try {
      await tenure.starting;
    } catch (err) {
      if (this.tenure === tenure) {
        this.tenure = undefined;
        await inner.stop().catch(() => undefined);
        await this.deps.lease.release().catch(() => undefined);
      }
      throw err;
    }
    // Lost while starting: stepDown stops it once its start has settled.
    if (this.tenure !== tenure) return;
    tenure.started = true;
    captureLeader.set({ shard: 'all' }, 1);
    this.log.info({ fence, ms: Date.now() - asked }, 'capture started under the lease');
  }

  private async stepDown(tenure: Tenure, reason: string): Promise<void> {
    if (this.tenure !== tenure) return;
    this.tenure = undefined;
    captureLeader.set({ shard: 'all' }, 0);
    this.log.warn({ reason, fence: tenure.fence }, 'producer lease lost: stopping capture, back to standby');
    // stop() is already stopping it.
    if (this.stopped) return;
    await tenure.starting.catch(() => undefined);
    await tenure.inner.stop().catch((err: unknown) => this.log.error({ err }, 'error while stopping capture'));
  }
}
