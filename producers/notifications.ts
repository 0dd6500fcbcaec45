import type { Redis } from 'ioredis';
import type { Logger } from '../shared/logger';
import { reconciliationGaps } from '../shared/metrics';
import { closeRedis } from '../shared/redis';
import type { ChangeSink } from './change-sink';

export interface NotificationDeps {
  /** Opens the subscriber connection (to the one server whose events this follows). */
  connect: () => Redis;
  databases: readonly number[];
  sink: ChangeSink;
  logger: Logger;
  /**
   * Called after the subscription is back following a disconnect: pub/sub does not replay
   * what was published meanwhile, so the caller reconciles.
   */
  onGap: (info: { gap: number; disconnectedMs: number }) => void;
  /** Checked again after every reconnect (the server may have restarted with other flags). */
  checkFlags: () => Promise<void>;
  /** Told when the subscription drops (a cluster master may have failed over). */
  onDisconnect?: () => void;
}

const CHANNEL = /^__keyevent@(\d+)__:(.+)$/;

/**
 * Follows keyevent notifications: every event on a key (set, del, expired, evicted,
 * rename_from/rename_to, hset, lpush, zadd, xadd, …) marks the key changed. The event name
 * does not matter because the worker reads the key's state when it writes.
 */
export class NotificationCapture {
  private sub: Redis | undefined;
  private gaps = 0;
  private disconnectedAt: number | undefined;
  private subscribedOnce = false;
  private stopping = false;
  readonly eventsByType = new Map<string, number>();

  constructor(private readonly deps: NotificationDeps) {}

  get gapCount(): number {
    return this.gaps;
  }

  async start(): Promise<void> {
    const log = this.deps.logger;
    const sub = this.deps.connect();
    // We subscribe again ourselves on every ready, so we know when the subscription is live.
    sub.options.autoResubscribe = false;
    this.sub = sub;
    sub.on('pmessage', (_pattern: string, channel: string, key: string) => this.onEvent(channel, key));
    sub.on('close', () => {
      if (this.subscribedOnce && !this.stopping && this.disconnectedAt === undefined) {
        this.disconnectedAt = Date.now();
        log.warn('notification connection lost: changes made now are caught by the reconciliation that follows');
        this.deps.onDisconnect?.();
      }
    });
    sub.on('ready', () => {
      if (!this.subscribedOnce) return;
      void this.resubscribe();
    });
    await this.subscribe();
    this.subscribedOnce = true;
  }

  async stop(): Promise<void> {
    const sub = this.sub;
    this.sub = undefined;
    this.stopping = true;
    if (!sub) return;
    // QUIT would wait for a server that may be gone for good (a failed cluster master).
    if (sub.status !== 'ready') {
      sub.disconnect();
      return;
    }
    await closeRedis(sub);
  }

  private async subscribe(): Promise<void> {
    if (!this.sub) return;
    await this.sub.psubscribe(...this.deps.databases.map((db) => `__keyevent@${db}__:*`));
  }

  private async resubscribe(): Promise<void> {
    const log = this.deps.logger;
    try {
      await this.deps.checkFlags();
      await this.subscribe();
    } catch (err) {
      log.error({ err: (err as Error).message }, 'could not resubscribe to notifications; retrying');
      setTimeout(() => void this.resubscribe(), 1000).unref();
      return;
    }
    const disconnectedMs = this.disconnectedAt === undefined ? 0 : Date.now() - this.disconnectedAt;
    this.disconnectedAt = undefined;
    this.gaps++;
    reconciliationGaps.inc();
    log.warn({ gap: this.gaps, disconnectedMs }, 'notification gap closed; reconciling');
    this.deps.onGap({ gap: this.gaps, disconnectedMs });
  }

  private onEvent(channel: string, key: string): void {
    const m = CHANNEL.exec(channel);
    if (!m) return;
    const event = m[2];
    this.eventsByType.set(event, (this.eventsByType.get(event) ?? 0) + 1);
    this.deps.sink.capture(Number(m[1]), key, 'notification');
  }
}
