import type { Redis } from 'ioredis';
import { keyFromBytes } from '../../../shared/core/bytes';
import type { Logger } from '../../../shared/platform/logger';
import { flushesDetected, reconciliationGaps } from '../../../shared/platform/metrics';
import { closeRedis } from '../../../shared/platform/redis';
import type { ChangeSink } from '../../change-sink';
import { notificationsConfig } from './config';

export interface SubscriptionDeps {
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
  /**
   * Run on the subscriber connection itself before every subscribe (the server may have
   * restarted with other flags, or be a promoted replica: CONFIG SET is not replicated).
   */
  checkFlags: (conn: Redis) => Promise<void>;
  /** Told when the subscription drops (a cluster master may have failed over). */
  onDisconnect?: () => void;
  /**
   * Tracked in broadcast mode so the server announces flushes: a prefix no key uses, so no
   * write announces anything else.
   */
  flushProbePrefix: string;
  /** FLUSHDB or FLUSHALL ran on this server, in some database (the announcement does not say which). */
  onFlush: () => void;
}

const CHANNEL = /^__keyevent@(\d+)__:(.+)$/;
/** Where a RESP2 connection that redirects client-side-caching invalidations to itself receives them. */
const INVALIDATE = '__redis__:invalidate';

/**
 * Follows keyevent notifications: every event on a key (set, del, expired, evicted,
 * rename_from/rename_to, hset, lpush, zadd, xadd, …) marks the key changed. The event name
 * does not matter because the worker reads the key's state when it writes.
 */
export class NotificationSubscription {
  private sub: Redis | undefined;
  private gaps = 0;
  private disconnectedAt: number | undefined;
  private subscribedOnce = false;
  private stopping = false;
  /** Whether the server announces flushes to us; undefined until first asked. */
  private flushTracking: boolean | undefined;
  readonly eventsByType = new Map<string, number>();

  constructor(private readonly deps: SubscriptionDeps) {}

  get gapCount(): number {
    return this.gaps;
  }

  async start(): Promise<void> {
    const log = this.deps.logger;
    const sub = this.deps.connect();
    // We subscribe again ourselves on every ready, so we know when the subscription is live.
    sub.options.autoResubscribe = false;
    this.sub = sub;
    // Buffers: a key name is bytes, and the text form of one that is not UTF-8 would lose them.
    sub.on('pmessageBuffer', (_pattern: string, channel: Buffer, key: Buffer) =>
      this.onEvent(channel.toString('latin1'), keyFromBytes(key)),
    );
    sub.on('messageBuffer', (channel: Buffer, keys: Buffer[] | null) => {
      // A flush invalidates everything at once: a null key list. A write under the probe prefix names its keys.
      if (keys === null && channel.toString('latin1') === INVALIDATE) {
        flushesDetected.inc();
        this.deps.onFlush();
      }
    });
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
    const sub = this.sub;
    if (!sub) return;
    // On this connection, not another one to "the same" server: after a Sentinel failover the
    // pool's connections may not have moved yet, and flags set on the old master would leave
    // the new one publishing nothing.
    await this.deps.checkFlags(sub);
    await this.trackFlushes(sub);
    await sub.psubscribe(...this.deps.databases.map((db) => `__keyevent@${db}__:*`));
  }

  /**
   * Keyspace notifications publish nothing for FLUSHDB/FLUSHALL, but client-side caching
   * announces them to every tracking connection. This connection tracks for itself (RESP2
   * allows redirecting to one's own id before subscribing), so flush announcements share its
   * reconnects and gaps; a reconnect means a new id, hence this runs before every subscribe.
   * A server that refuses (no CLIENT TRACKING before Redis 6, or the ACL) leaves flushes to
   * the scheduled reconciliation.
   */
  private async trackFlushes(sub: Redis): Promise<void> {
    try {
      const id = await sub.client('ID');
      await sub.client('TRACKING', 'ON', 'REDIRECT', id, 'BCAST', 'PREFIX', this.deps.flushProbePrefix);
      await sub.subscribe(INVALIDATE);
      this.flushTracking = true;
    } catch (err) {
      if (!(err instanceof Error) || err.name !== 'ReplyError') throw err;
      if (this.flushTracking !== false) {
        this.deps.logger.warn(
          { err },
          'flush detection unavailable (grant +client|id +client|tracking +subscribe &__redis__:invalidate; docs/security.md, Redis ACL): FLUSHDB and FLUSHALL are repaired by the scheduled reconciliation only',
        );
      }
      this.flushTracking = false;
    }
  }

  private async resubscribe(): Promise<void> {
    const log = this.deps.logger;
    try {
      await this.subscribe();
    } catch (err) {
      log.error({ err }, 'could not resubscribe to notifications; retrying');
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
    const [, db, event] = m ?? [];
    if (db === undefined || event === undefined) return;
    this.eventsByType.set(event, (this.eventsByType.get(event) ?? 0) + 1);
    this.deps.sink.capture(Number(db), key, notificationsConfig.source);
  }
}
