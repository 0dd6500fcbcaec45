import type { Redis } from 'ioredis';
import type { SourceNode, SourceRedis } from '../shared/platform/redis';
import { slotsOfNode } from '../shared/platform/redis-cluster';

/**
 * A capture shard: one master of a Redis Cluster source, named by its cluster node ID
 * (`CLUSTER MYID`). The node ID is what the cluster itself names a node by: it survives the
 * node's restarts and a change of its address, and no other node ever has it. A failover makes
 * another node master, with another ID, so it is another shard; that is right for capture,
 * because pub/sub is node-local: the promoted master must be subscribed afresh and reconciled
 * whoever captured the old one. Resharding moves slots, not nodes: the shard, its lease and its
 * subscription stay as they are.
 */
export interface Shard {
  /** The master's cluster node ID. */
  id: string;
  node: SourceNode;
}

/** The node ID of a master, asked of the master itself (its own answer, not another node's view). */
async function nodeId(client: Redis): Promise<string> {
  const reply = await client.cluster('MYID');
  return reply.trim();
}

/** The masters of a Cluster source now (the platform's list: failed masters left out), with their node IDs. */
export async function listShards(source: SourceRedis): Promise<Shard[]> {
  const nodes = await source.masters(0);
  const ids = await Promise.all(nodes.map((n) => nodeId(n.client)));
  return nodes.map((node, i) => ({ id: ids[i] ?? '', node })).filter((s) => s.id !== '');
}

/**
 * The source as one shard's tenure sees it: key commands and the topology are the whole
 * cluster's (a key is read wherever it lives, and a scan repeats while any slot moves), but the
 * node-local work, the subscription and the SCAN of a reconciliation, runs on this shard's
 * master only. While the node is no longer a master it lists none; the tenure ends then.
 */
export function shardSource(source: SourceRedis, shard: string): SourceRedis {
  const masters = async (db: number): Promise<SourceNode[]> => {
    const nodes = await source.masters(db);
    const ids = await Promise.all(nodes.map((n) => nodeId(n.client)));
    return nodes.filter((_, i) => ids[i] === shard);
  };
  return {
    isCluster: source.isCluster,
    db: (db) => source.db(db),
    masters,
    topology: () => source.topology(),
    // What the master holds now, so a reconciliation decides the deletions of its own keys only.
    async slotsServed() {
      const [node] = await masters(0);
      return node ? slotsOfNode(node.client) : new Set<number>();
    },
    subscriber: (nodeIdOrAddr, name, db) => source.subscriber(nodeIdOrAddr, name, db),
    // The whole source belongs to the process, not to one tenure.
    close: () => Promise.resolve(),
  };
}

export interface ShardPlan {
  /** The most shards this producer should hold: ceil(masters / live producers). */
  share: number;
  /** Held shards to give up: those no longer masters, then the surplus above the share. */
  release: string[];
  /** Free shards to try for, in order, until the share is held (another producer may win one). */
  candidates: string[];
}

/**
 * The fair share of one producer. Every producer holds at most ceil(M/N) of the M masters, N
 * being the live producers; whoever holds more gives the surplus up, whoever holds fewer takes
 * free ones. As N·ceil(M/N) ≥ M, a free shard always finds a producer below its share, so every
 * shard is taken as soon as the producers agree on M and N. `others` are shards held by other
 * producers, as far as this one knows (a stale view only costs a refused acquisition).
 * Candidates start at an offset of this producer's own, so producers joining together try
 * different shards first.
 */
export function planShards(input: {
  masters: readonly string[];
  held: readonly string[];
  others: ReadonlySet<string>;
  producers: number;
  offset: number;
}): ShardPlan {
  const masters = [...new Set(input.masters)].sort();
  const share = masters.length === 0 ? 0 : Math.ceil(masters.length / Math.max(1, input.producers));
  const current = new Set(masters);
  const gone = input.held.filter((s) => !current.has(s));
  const kept = input.held.filter((s) => current.has(s)).sort();
  const surplus = kept.slice(share);
  const mine = new Set(input.held);
  const free = masters.filter((s) => !mine.has(s) && !input.others.has(s));
  const start = free.length === 0 ? 0 : input.offset % free.length;
  const rotated = [...free.slice(start), ...free.slice(0, start)];
  const room = Math.max(0, share - kept.length);
  return { share, release: [...gone, ...surplus], candidates: room > 0 ? rotated : [] };
}
