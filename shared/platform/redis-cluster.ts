import type { ConnectionOptions } from 'node:tls';
import type { Cluster, Redis } from 'ioredis';
import type { Logger } from './logger';
import { closeRedis, connectCluster, connectRedis, type SourceNode, type SourceRedis } from './redis';

/** A slot being moved: `[slot->-target]` on the source node, `[slot-<-source]` on the target. */
const MIGRATION_MARK = /\[\d+-[<>]-/;

/** True when a topology seen before and after a scan shows nothing moved meanwhile or in progress. */
export function topologyHeldStill(before: string, after: string): boolean {
  return before === after && !MIGRATION_MARK.test(after);
}

interface NodeLine {
  id: string;
  addr: string;
  flags: string[];
  epoch: string;
  slots: string[];
}

/** Parses CLUSTER NODES: `<id> <ip:port@cport[,hostname]> <flags> <master> <ping> <pong> <epoch> <link> <slot>...`. */
export function parseClusterNodes(text: string): NodeLine[] {
  const out: NodeLine[] = [];
  for (const line of text.split('\n')) {
    const [id, addr, flags, , , , epoch, link, ...slots] = line.trim().split(' ');
    if (id === undefined || addr === undefined || flags === undefined || epoch === undefined || link === undefined)
      continue;
    out.push({ id, addr: addr.split('@')[0] ?? addr, flags: flags.split(','), epoch, slots });
  }
  return out;
}

/**
 * The slots a node's CLUSTER NODES line lists as its own (`0-5460`, `5461`). The marks of a
 * slot migration in progress (`[slot->-target]`, `[slot-<-source]`) are left out: a slot
 * being moved away is still in the node's ranges, one being moved in is not its own yet.
 */
export function ownSlots(tokens: readonly string[]): Set<number> {
  const slots = new Set<number>();
  for (const token of tokens) {
    if (token.startsWith('[')) continue;
    const [from, to = from] = token.split('-').map(Number);
    if (from === undefined || to === undefined || !Number.isInteger(from) || !Number.isInteger(to)) continue;
    for (let s = from; s <= to; s++) slots.add(s);
  }
  return slots;
}

/** The slots the master at `client` holds, as it says itself (its `myself` line). */
export async function slotsOfNode(client: Redis): Promise<Set<number>> {
  const mine = parseClusterNodes((await client.cluster('NODES')) as string).find((n) => n.flags.includes('myself'));
  return mine ? ownSlots(mine.slots) : new Set();
}

/** A node the cluster has not declared failed, whose address it knows and has finished meeting. */
function isUsable(n: NodeLine): boolean {
  return !n.flags.some((fl) => fl === 'fail' || fl === 'noaddr' || fl === 'handshake');
}

/**
 * Masters by `host:port`, slotless ones included: a master that is receiving its first slots
 * gets keys (and publishes their events) before it owns any. A master the cluster has
 * declared failed is left out; one only suspected (`fail?`) is kept until that is settled.
 */
export function masterAddresses(text: string): string[] {
  return parseClusterNodes(text)
    .filter((n) => n.flags.includes('master') && isUsable(n))
    .map((n) => n.addr)
    .filter((addr) => !addr.startsWith(':'))
    .sort();
}

/**
 * A Redis Cluster source. Key commands go through an ioredis Cluster (slot routing, MOVED and
 * ASK); SCAN, DBSIZE and CONFIG run on a connection of our own to each master, re-listed
 * from CLUSTER NODES on every call so failovers and new masters are picked up.
 */
export class ClusterSource implements SourceRedis {
  readonly isCluster = true;
  private readonly cluster: Cluster;
  private readonly nodes = new Map<string, Redis>();

  constructor(
    private readonly seeds: readonly [string, ...string[]],
    private readonly name: string,
    private readonly logger?: Logger,
    private readonly tls?: ConnectionOptions,
  ) {
    this.cluster = connectCluster(seeds, { name, logger, tls });
  }

  db(db: number): Cluster {
    if (db !== 0) throw new RangeError(`a Redis Cluster has only database 0 (asked for ${db})`);
    return this.cluster;
  }

  async masters(db: number): Promise<SourceNode[]> {
    this.db(db);
    const text = (await this.cluster.cluster('NODES')) as string;
    const addrs = masterAddresses(text);
    if (addrs.length === 0) throw new Error('CLUSTER NODES lists no master');
    // A master demoted by a failover is a healthy replica now, and another caller (a scan under
    // way, verify) may still hold its client from an earlier listing: it stays open, and serves
    // again if the node is promoted back. Only a node that failed or left the cluster is closed.
    const healthy = new Set(
      parseClusterNodes(text)
        .filter(isUsable)
        .map((n) => n.addr),
    );
    for (const [addr, client] of this.nodes) {
      if (!addrs.includes(addr) && !healthy.has(addr)) {
        this.nodes.delete(addr);
        void closeRedis(client);
      }
    }
    return addrs.map((id) => ({ id, client: this.node(id) }));
  }

  async topology(): Promise<string> {
    const masters = await this.masters(0);
    const lines = await Promise.all(
      masters.map(async (m) => {
        const mine = parseClusterNodes((await m.client.cluster('NODES')) as string).find((n) =>
          n.flags.includes('myself'),
        );
        if (!mine) throw new Error(`CLUSTER NODES on ${m.id} has no myself line`);
        return `${m.id} ${mine.flags.includes('master') ? 'master' : 'replica'} ${mine.epoch} ${mine.slots.join(' ')}`;
      }),
    );
    return lines.join('\n');
  }

  /** The whole cluster answers for every key. */
  async slotsServed(): Promise<undefined> {
    return undefined;
  }

  subscriber(nodeId: string, name: string): Redis {
    // Fail fast: subscribing to a master that died must not hold up the refresh (or shutdown).
    return connectRedis(this.urlOf(nodeId), { name, logger: this.logger, failFast: true, tls: this.tls });
  }

  async close(): Promise<void> {
    const nodes = [...this.nodes.values()];
    this.nodes.clear();
    await closeRedis(this.cluster, ...nodes);
  }

  private node(addr: string): Redis {
    let client = this.nodes.get(addr);
    if (!client) {
      // Fail fast: a master that died makes the scan fail and be retried on the new topology.
      client = connectRedis(this.urlOf(addr), {
        name: `${this.name}:${addr}`,
        logger: this.logger,
        failFast: true,
        tls: this.tls,
      });
      this.nodes.set(addr, client);
    }
    return client;
  }

  private urlOf(addr: string): string {
    return nodeUrl(this.seeds[0], addr);
  }
}

/** A cluster node's URL (`host:port` as CLUSTER NODES names it) with the seed URL's credentials and scheme. */
export function nodeUrl(seed: string, addr: string): string {
  const u = new URL(seed);
  const i = addr.lastIndexOf(':');
  u.hostname = addr.slice(0, i);
  u.port = addr.slice(i + 1);
  u.pathname = '';
  return u.toString();
}
