import type { Logger } from '../shared/logger';
import type { SyncQueue } from '../shared/queue';
import type { CaptureProducer } from './create-producer';
import type { RedisLease } from './lease';

export interface LeasedProducerDeps {
  lease: RedisLease;
  /** A fresh capture producer for each tenure (a stopped one is not restarted). */
  create: () => CaptureProducer;
  ttlMs: number;
  renewMs: number;
  logger: Logger;
}

/**
 * High availability for any capture mode: several producers may run, only the holder of the
 * lease captures. The others poll and take over once it expires (or is released on a
 * graceful stop). A new leader's producer starts as at first start: live capture first,
 * then a full reconciliation, so whatever the old leader had not enqueued is enqueued again.
 * A leader that loses the lease stops capturing and goes back to standby; enqueues go
 * through `fencedQueue`, so even a paused leader that has not noticed yet cannot enqueue.
 */
export class LeasedProducer implements CaptureProducer {
  private inner: CaptureProducer | undefined;
  private timer: NodeJS.Timeout | undefined;
  private ticking: Promise<void> | undefined;
  private renewedAt = 0;
  private stopped = false;
  private readonly log: Logger;

  constructor(private readonly deps: LeasedProducerDeps) {
    this.log = deps.logger.child({ component: 'producer-lease', token: deps.lease.token });
  }

  get isLeader(): boolean {
    return this.inner !== undefined;
  }

  /** The capture producer of the current tenure, if this one leads. */
  get current(): CaptureProducer | undefined {
    return this.inner;
  }

  /**
   * Leads at once when the lease is free (errors of the capture producer's start propagate:
   * bad set-up should stop the process), else waits as standby. An unreachable queue Redis
   * only delays: the standby loop keeps trying.
   */
  async start(): Promise<void> {
    const asked = Date.now();
    const fence = await this.deps.lease.acquire().catch((err: Error) => {
      this.log.warn({ err: err.message }, 'could not ask for the producer lease; trying again');
      return null;
    });
    if (fence === undefined) this.log.info('standby: another producer holds the lease');
    else if (fence !== null) await this.lead(fence, asked);
    this.timer = setInterval(() => this.schedule(), this.deps.renewMs);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    await this.ticking;
    const inner = this.inner;
    if (!inner) return;
    // Everything captured is enqueued while the lease is still ours, then it is given up at once.
    await inner.stop();
    this.inner = undefined;
    const fence = this.deps.lease.fence;
    await this.deps.lease.release().catch((err: Error) => this.log.warn({ err: err.message }, 'could not release the lease; it expires by itself'));
    this.log.info({ fence }, 'producer lease released');
  }

  async idle(): Promise<void> {
    await this.inner?.idle();
  }

  requestReconcile(): void {
    this.inner?.requestReconcile();
  }

  private schedule(): void {
    if (this.ticking || this.stopped) return;
    this.ticking = this.tick().finally(() => {
      this.ticking = undefined;
    });
  }

  private async tick(): Promise<void> {
    if (!this.inner) {
      try {
        await this.tryLead();
      } catch (err) {
        this.log.error({ err: (err as Error).message }, 'could not take over capture; trying again');
      }
      return;
    }
    try {
      if (await this.deps.lease.renew()) {
        this.renewedAt = Date.now();
        return;
      }
      await this.stepDown('the lease was taken by another producer');
    } catch (err) {
      // Unreachable Redis: keep leading while the lease may still be ours, never longer.
      if (Date.now() - this.renewedAt < this.deps.ttlMs) {
        this.log.warn({ err: (err as Error).message }, 'could not renew the producer lease; retrying');
        return;
      }
      this.deps.lease.forget();
      await this.stepDown('the lease could not be renewed within its TTL');
    }
  }

  private async tryLead(): Promise<void> {
    const asked = Date.now();
    const fence = await this.deps.lease.acquire();
    if (fence === undefined) return;
    if (this.stopped) {
      await this.deps.lease.release();
      return;
    }
    await this.lead(fence, asked);
  }

  private async lead(fence: number, asked: number): Promise<void> {
    this.renewedAt = asked;
    this.log.info({ fence }, 'producer lease acquired: capturing, reconciling to cover the takeover');
    const inner = this.deps.create();
    try {
      await inner.start();
    } catch (err) {
      await inner.stop().catch(() => undefined);
      await this.deps.lease.release().catch(() => undefined);
      throw err;
    }
    this.inner = inner;
  }

  private async stepDown(reason: string): Promise<void> {
    const inner = this.inner;
    this.inner = undefined;
    this.log.warn({ reason }, 'producer lease lost: stopping capture, back to standby');
    await inner?.stop().catch((err: Error) => this.log.error({ err: err.message }, 'error while stopping capture'));
  }
}

/** The queue, but every add/addBulk first checks with Redis that this producer still holds the lease. */
export function fencedQueue(queue: SyncQueue, check: () => Promise<void>): SyncQueue {
  return new Proxy(queue, {
    get(target, prop) {
      if (prop === 'add' || prop === 'addBulk') {
        const method = target[prop].bind(target) as (...args: unknown[]) => Promise<unknown>;
        return async (...args: unknown[]) => {
          await check();
          return method(...args);
        };
      }
      const value: unknown = Reflect.get(target, prop, target);
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}
