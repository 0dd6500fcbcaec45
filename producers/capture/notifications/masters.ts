import type { Redis } from 'ioredis';
import type { NonEmpty } from '../../../shared/platform/config/schema';
import { RedisSetupError } from '../../../shared/platform/errors';
import type { Logger } from '../../../shared/platform/logger';
import type { SourceNode, SourceRedis } from '../../../shared/platform/redis';
import type { ChangeSink } from '../../change-sink';
import { NotificationSubscription } from './subscription';
import { ensureNotifyFlags } from './notify-flags';

export interface MasterNotificationsDeps {
  source: SourceRedis;
  /** Non-empty (config schema): masters are looked up through the first. */
  databases: NonEmpty<number>;
  sink: ChangeSink;
  logger: Logger;
  /** Set notify-keyspace-events on a master that lacks flags, instead of failing. */
  configureNotifications: boolean;
  /** How often a cluster's masters are listed again. */
  refreshMs: number;
  /** A subscription came back or a new master was subscribed: what it published before is lost. */
  onGap: () => void;
  /** See SubscriptionDeps. */
  flushProbePrefix: string;
  /** A master announced a FLUSHDB or FLUSHALL. */
  onFlush: () => void;
}

/**
 * Keyevent notifications from every master. Notifications are node-local, so a Redis Cluster
 * needs one subscription per master; the list of masters is refreshed on a schedule and
 * whenever a subscription drops, so failovers and resharding are followed: new masters are
 * subscribed (a gap, reconciled), masters that left are dropped. A standalone or Sentinel
 * source is one "master" whose connection follows the server itself.
 */
export class MasterNotifications {
  private readonly captures = new Map<string, NotificationSubscription>();
  private timer: NodeJS.Timeout | undefined;
  private refreshing: Promise<void> | undefined;
  private stopped = false;
  /** Gaps of subscriptions already dropped, plus masters subscribed after start. */
  private pastGaps = 0;
  private readonly log: Logger;

  constructor(private readonly deps: MasterNotificationsDeps) {
    this.log = deps.logger;
  }

  get gapCount(): number {
    let n = this.pastGaps;
    for (const c of this.captures.values()) n += c.gapCount;
    return n;
  }

  get masters(): string[] {
    return [...this.captures.keys()];
  }

  /** Subscribes on every master; fails (e.g. missing notification flags) when any cannot be. */
  async start(): Promise<void> {
    const nodes = await this.deps.source.masters(this.deps.databases[0]);
    const results = await Promise.allSettled(nodes.map((n) => this.add(n)));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) {
      // Nobody stops a producer that did not start: close the subscriptions that did.
      await this.stop();
      throw failed.reason;
    }
    if (this.deps.source.isCluster) {
      this.timer = setInterval(() => this.refresh(), this.deps.refreshMs);
      this.timer.unref();
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    await this.refreshing;
    const captures = [...this.captures.values()];
    this.captures.clear();
    await Promise.all(captures.map((c) => c.stop()));
  }

  /** Re-lists the masters now (at most one refresh at a time). */
  refresh(): void {
    if (this.stopped || this.refreshing || !this.deps.source.isCluster) return;
    this.refreshing = this.refreshOnce()
      .catch((err: unknown) => this.log.warn({ err }, 'could not list the cluster masters; trying again later'))
      .finally(() => {
        this.refreshing = undefined;
      });
  }

  private async refreshOnce(): Promise<void> {
    const nodes = await this.deps.source.masters(this.deps.databases[0]);
    const current = new Set(nodes.map((n) => n.id));
    for (const [id, capture] of this.captures) {
      if (current.has(id)) continue;
      this.captures.delete(id);
      this.pastGaps += capture.gapCount;
      this.log.info({ node: id }, 'no longer a master: notifications from it dropped');
      await capture.stop();
    }
    const added = nodes.filter((n) => !this.captures.has(n.id));
    const results = await Promise.allSettled(added.map((n) => this.add(n)));
    let subscribed = 0;
    results.forEach((r, i) => {
      if (r.status === 'fulfilled') subscribed++;
      else
        this.log.error(
          { node: added[i]?.id, err: r.reason },
          'could not subscribe to a new master; retrying at the next refresh',
        );
    });
    if (subscribed > 0 && !this.stopped) {
      this.pastGaps += subscribed;
      this.log.warn(
        { masters: this.masters, subscribed },
        'new masters subscribed: what they published before is reconciled',
      );
      this.deps.onGap();
    }
  }

  private async add(node: SourceNode): Promise<void> {
    const log = node.id ? this.log.child({ node: node.id }) : this.log;
    const checkFlags = (conn: Redis): Promise<void> => ensureNotifyFlags(conn, this.deps.configureNotifications, log);
    const capture = new NotificationSubscription({
      connect: () => this.deps.source.subscriber(node.id, node.id ? `notifications:${node.id}` : 'notifications'),
      databases: this.deps.databases,
      sink: this.deps.sink,
      logger: log,
      checkFlags,
      onGap: () => this.deps.onGap(),
      onDisconnect: () => this.refresh(),
      flushProbePrefix: this.deps.flushProbePrefix,
      onFlush: () => {
        log.warn(`flush detected on ${node.id || 'the source Redis'}; reconciling`);
        this.deps.onFlush();
      },
    });
    try {
      // Before opening the subscriber, so a cluster master without the flags is named; the subscriber checks its own server again.
      await checkFlags(node.client);
    } catch (err) {
      // In a cluster, say which master lacks the flags.
      if (err instanceof RedisSetupError && node.id)
        throw new RedisSetupError(`cluster master ${node.id}: ${err.message}`);
      throw err;
    }
    try {
      await capture.start();
    } catch (err) {
      await capture.stop();
      throw err;
    }
    if (this.stopped) {
      await capture.stop();
      return;
    }
    this.captures.set(node.id, capture);
  }
}
