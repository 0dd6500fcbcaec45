import { crc32 } from 'node:zlib';
// ioredis's own implementation of the Redis Cluster key slot (CRC16 of the hash tag, mod 16384).
import calculateSlot from 'ioredis/built/utils/calculateSlot';
import { keyToBytes } from './bytes';

/** The slots of a Redis Cluster (CLUSTER KEYSLOT answers 0 to 16383). */
export const CLUSTER_SLOTS = 16384;

/** One BullMQ queue of a layout: partition `index` of `count`. */
export interface PartitionQueueName {
  index: number;
  count: number;
  /** The BullMQ queue name. */
  name: string;
  /** The BullMQ prefix; with a hash tag of the partition's own when count > 1. */
  prefix: string;
}

/**
 * Which of `count` partitions carries a key: CRC-32 of the database number and the key's
 * bytes, so every producer and command (whatever its version or process) picks the same one.
 */
export function partitionOf(db: number, key: string, count: number): number {
  if (count <= 1) return 0;
  const dbBytes = Buffer.alloc(4);
  dbBytes.writeUInt32BE(db);
  return crc32(keyToBytes(key), crc32(dbBytes)) % count;
}

/** The prefix without its hash tag braces: partitions put their own tag after it. */
export function untaggedPrefix(prefix: string): string {
  return prefix.replace(/[{}]/g, '');
}

/**
 * The queues of a layout of `count` partitions. One partition is the queue as it always was
 * (`prefix`, `name`), so a deployment that never sets `queue.partitions` keeps its keys.
 * With more, partition p is the queue `<name>-p<p>of<count>` under the prefix
 * `<prefix without braces>:{<tag>}`: its keys hash on a tag of its own (a tag in `prefix` would
 * come first and put every partition in one slot). The tag is steered (a numbered suffix) so
 * its slot falls in the middle half of the p-th of `count` equal slot ranges: on a cluster
 * whose masters hold equal consecutive slot ranges (what `redis-cli --cluster create` makes)
 * the partitions spread evenly over the masters whenever `count` is a multiple of them.
 */
export function partitionQueues(prefix: string, name: string, count: number): PartitionQueueName[] {
  if (count <= 1) return [{ index: 0, count: 1, name, prefix }];
  const root = untaggedPrefix(prefix);
  return Array.from({ length: count }, (_, index) => {
    const queueName = `${name}-p${index}of${count}`;
    return { index, count, name: queueName, prefix: `${root}:{${steeredTag(queueName, index, count)}}` };
  });
}

/** The hash tag of partition `index`: the first `<queueName>.<n>` whose slot lies in the middle of its range. */
function steeredTag(queueName: string, index: number, count: number): string {
  const width = CLUSTER_SLOTS / count;
  const low = Math.ceil(index * width + width / 4);
  const high = Math.floor(index * width + (3 * width) / 4);
  for (let n = 0; ; n++) {
    const tag = `${queueName}.${n}`;
    const slot = calculateSlot(tag);
    // A range narrower than one slot (more partitions than a quarter of the slots) takes any.
    if ((slot >= low && slot <= high) || high < low) return tag;
  }
}

/** The slot of a partition's keys in a Redis Cluster (the slot of its hash tag). */
export function partitionSlot(queue: PartitionQueueName): number {
  return calculateSlot(`${queue.prefix}:${queue.name}:wait`);
}

/**
 * Whether a key is one of the partition queues' keys (of any layout) under `prefix`. Those of
 * one partition start with `<prefix>:` like every other key of the tool; those of a layout of
 * several partitions start with `<prefix without braces>:{`.
 */
export function isPartitionKey(prefix: string, key: string): boolean {
  return key.startsWith(`${untaggedPrefix(prefix)}:{`);
}

/** Partitions a worker consumes: `subset` when given (checked against `count`), else all. */
export function consumedPartitions(count: number, subset: readonly number[] | undefined): number[] {
  const all = Array.from({ length: count }, (_, p) => p);
  return subset ? all.filter((p) => subset.includes(p)) : all;
}
