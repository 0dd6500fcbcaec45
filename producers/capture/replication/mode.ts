import { LeaseLostError, RedisSetupError } from '../../../shared/platform/errors';
import type { Logger } from '../../../shared/platform/logger';
import { listShards, type Shard } from '../../shards';
import type { CaptureContext, CaptureMode } from '../types';
import {
  ReplicationCheckpoint,
  checkpointIndexKey,
  checkpointKey,
  inHistory,
  inheritedPosition,
  parseHistory,
  type StreamPosition,
} from './checkpoint';
import { CommandKeys } from './command-keys';
import { MasterReplication } from './master-link';
import { replicationUrl } from './topology';
import { sleep } from '../../../shared/platform/sleep';

/** How long a former master's link may take to stop before it is dropped. */
const STOP_BOUND_MS = 10_000;

/**
 * Replication capture: a replica link per master. A standalone source is one master with one
 * checkpoint. A Cluster source has a link per master, each with its own checkpoint keyed by
 * the master's node ID; the masters are listed again every `producer.topologyRefreshMs`, so a
 * master added, or promoted by a failover, gets a link, and a link to a node that is no longer
 * a master is stopped (flushed, its checkpoint saved). A promoted replica keeps its old
 * master's replication id as `replid2`, so its link starts from the old master's checkpoint
 * and PSYNC continues the stream; where the history does not reach, the master answers with a
 * full resynchronization, whose snapshot is enqueued and whose missing keys' documents go.
 *
 * Under sharded capture a tenure's source lists its shard's master only: the same code then
 * runs one link, under that shard's lease.
 */
export class ReplicationMode implements CaptureMode {
  private readonly links = new Map<string, MasterReplication>();
  private readonly log: Logger;
  private keys: CommandKeys | undefined;
  private timer: NodeJS.Timeout | undefined;
  private refreshing: Promise<void> | undefined;
  private stopped = false;
  /** Links already stopped (their masters left): their counters still count. */
  private past = { full: 0, partial: 0 };
  private readonly pastUnknown = new Set<string>();

  constructor(private readonly ctx: CaptureContext) {
    this.log = ctx.logger;
  }

  get fullResyncs(): number {
    return this.past.full + [...this.links.values()].reduce((n, l) => n + l.fullResyncs, 0);
  }

  get partialResyncs(): number {
    return this.past.partial + [...this.links.values()].reduce((n, l) => n + l.partialResyncs, 0);
  }

  /** Replicated commands whose keys could not be told (each led to a reconciliation). */
  get unknownCommands(): Set<string> {
    const all = new Set(this.pastUnknown);
    for (const l of this.links.values()) for (const c of l.unknownCommands) all.add(c);
    return all;
  }

  /** The Cluster masters (node IDs) with a link now; empty for a standalone source. */
  get masters(): string[] {
    return [...this.links.keys()].filter((id) => id !== '');
  }

  /** Resolves once every master accepted us as a replica; snapshots then load in the background. */
  async start(): Promise<void> {
    const { config, source } = this.ctx;
    this.keys = await CommandKeys.load(source.db(config.redis.databases[0] ?? 0));
    if (!source.isCluster) {
      const link = this.standalone(this.keys);
      this.links.set('', link);
      await link.start();
      return;
    }
    const shards = await listShards(source);
    const results = await Promise.allSettled(shards.map((s) => this.add(s)));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    // What waiting cannot fix (PSYNC refused by ACL) stops the start; a master that is only unreachable is retried at the next refresh.
    if (failed && failed.reason instanceof RedisSetupError) {
      await this.stop();
      await this.close({});
      throw failed.reason;
    }
    results.forEach((r, i) => {
      if (r.status === 'rejected')
        this.log.warn(
          { master: shards[i]?.id, err: r.reason },
          'could not replicate a master yet; retrying at the next refresh',
        );
    });
    this.log.info({ masters: this.masters }, 'replicating every master of the Cluster source');
    this.timer = setInterval(() => this.refresh(), config.producer.topologyRefreshMs);
    this.timer.unref();
  }

  async idle(): Promise<void> {
    await Promise.all([...this.links.values()].map((l) => l.idle()));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    await this.refreshing;
    await Promise.all([...this.links.values()].map((l) => l.stop()));
  }

  /** After the host's last flush: every link saves the position that flush covers. */
  async close(outcome: { leaseLost?: LeaseLostError }): Promise<void> {
    await Promise.all([...this.links.values()].map((l) => l.close(outcome)));
  }

  /**
   * A full reconciliation covers every master: it runs as one link's background work (its
   * checkpoint then waits for it), the first one's.
   */
  requestReconcile(): void {
    const [first] = this.links.values();
    if (first) first.requestReconcile();
    else this.log.warn('no master is replicated by this tenure: reconciliation request dropped');
  }

  private standalone(keys: CommandKeys): MasterReplication {
    const { config, queueRedis, fence } = this.ctx;
    const checkpoint = new ReplicationCheckpoint(queueRedis, checkpointKey(config.queue.prefix), fence);
    return new MasterReplication({
      ctx: this.ctx,
      url: replicationUrl(config),
      checkpoint,
      resume: () => checkpoint.load(),
      keys,
      logger: this.log,
    });
  }

  /** Starts a link to one Cluster master; it counts as added only once the master accepted it. */
  private async add(shard: Shard): Promise<void> {
    // Mid-failover, the node that answered CLUSTER NODES may still list a replica being
    // promoted (or the master it replaces) as a master. Asked itself, a replica says so: a link
    // to it would only fetch a snapshot of its own; the next refresh looks again.
    if (!/^role:master\r?$/m.test(await shard.node.client.info('replication'))) return;
    const { config, queueRedis, fence } = this.ctx;
    const prefix = config.queue.prefix;
    const log = this.log.child({ master: shard.id, node: shard.node.id });
    const checkpoint = new ReplicationCheckpoint(queueRedis, checkpointKey(prefix, shard.id), fence, {
      key: checkpointIndexKey(prefix),
      node: shard.id,
    });
    const link = new MasterReplication({
      ctx: this.ctx,
      url: replicationUrl(config, shard.node.id),
      checkpoint,
      resume: () => this.resumeFrom(shard, checkpoint, log),
      keys: this.keys as CommandKeys,
      logger: log,
    });
    await link.start().catch(async (err: unknown) => {
      await link.stop();
      throw err;
    });
    if (this.stopped) {
      await link.stop();
      await link.close({});
      return;
    }
    this.links.set(shard.id, link);
  }

  /**
   * This master's checkpoint while its replication history still holds it; otherwise the
   * furthest checkpoint of another master that lies in its history (the master it was a
   * replica of, before a failover promoted it); otherwise its own (PSYNC then answers with a
   * full resynchronization), or none.
   */
  private async resumeFrom(shard: Shard, own: ReplicationCheckpoint, log: Logger): Promise<StreamPosition | undefined> {
    const saved = await own.load();
    const history = parseHistory(await shard.node.client.info('replication'));
    if (history === undefined || (saved !== undefined && inHistory(saved, history))) return saved;
    const inherited = await inheritedPosition(this.ctx.queueRedis, this.ctx.config.queue.prefix, history);
    if (inherited === undefined) return saved;
    log.info(
      { from: inherited.node, replid: inherited.position.replid, offset: inherited.position.offset },
      "continuing from the checkpoint of the master whose replication history this one holds (a failover's promoted replica)",
    );
    return inherited.position;
  }

  private refresh(): void {
    if (this.stopped || this.refreshing) return;
    this.refreshing = this.refreshOnce()
      .catch((err: unknown) => this.log.warn({ err }, 'could not list the cluster masters; trying again later'))
      .finally(() => {
        this.refreshing = undefined;
      });
  }

  private async refreshOnce(): Promise<void> {
    const shards = await listShards(this.ctx.source);
    const current = new Set(shards.map((s) => s.id));
    for (const [id, link] of this.links) {
      if (current.has(id) || this.stopped) continue;
      this.log.info({ master: id }, 'no longer a master: its replica link stops, its checkpoint is saved');
      await this.remove(id, link);
    }
    const added = shards.filter((s) => !this.links.has(s.id));
    const results = await Promise.allSettled(added.map((s) => this.add(s)));
    results.forEach((r, i) => {
      if (r.status === 'rejected')
        this.log.error(
          { master: added[i]?.id, err: r.reason },
          'could not replicate a new master; retrying at the next refresh',
        );
    });
    if (added.length > 0 && !this.stopped) this.log.info({ masters: this.masters }, 'replicated masters changed');
  }

  /**
   * Stops one link as the host stops a tenure: it stops learning, what it captured is flushed
   * under the fence, and only then is its checkpoint saved.
   */
  private async remove(id: string, link: MasterReplication): Promise<void> {
    // A link that does not stop must not hold up the links of the masters that replaced it.
    const bound = new AbortController();
    const stopped = await Promise.race([
      link.stop().then(() => {
        bound.abort();
        return true;
      }),
      sleep(STOP_BOUND_MS, bound.signal).then(() => false),
    ]);
    if (!stopped) {
      // Its checkpoint stays where it was: a master that inherits it replays from there (more, never less).
      this.log.error(
        { master: id, waitingFor: link.stopping, boundMs: STOP_BOUND_MS },
        'the replica link of a former master did not stop in time; dropped without saving its checkpoint',
      );
      this.forget(id, link);
      return;
    }
    const outcome: { flushed: boolean; leaseLost?: LeaseLostError } = await this.ctx.sink.flush().then(
      () => ({ flushed: true }),
      (err: unknown) => {
        if (err instanceof LeaseLostError) return { flushed: true, leaseLost: err };
        this.log.warn({ err, master: id }, 'flushing before a replica link stopped failed; its checkpoint stays');
        return { flushed: false };
      },
    );
    // A failed flush leaves the checkpoint where it was: what was not queued is replayed from there.
    if (outcome.flushed) await link.close({ leaseLost: outcome.leaseLost });
    this.forget(id, link);
  }

  /** The link leaves the set; its counters still count. */
  private forget(id: string, link: MasterReplication): void {
    this.links.delete(id);
    this.past.full += link.fullResyncs;
    this.past.partial += link.partialResyncs;
    for (const c of link.unknownCommands) this.pastUnknown.add(c);
  }
}
