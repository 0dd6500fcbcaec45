import calculateSlot from 'ioredis/built/utils/calculateSlot';
import { keyFromBytes } from '../../../../shared/core/bytes';
import {
  CLUSTER_SLOTS,
  consumedPartitions,
  partitionOf,
  partitionQueues,
  partitionSlot,
} from '../../../../shared/core/partitions';
import { isOwnKey } from '../../../../shared/core/queue';
import { ConfigSchema } from '../../../../producers/capture/registry';

/** The master of a slot in a cluster of `masters` equal consecutive ranges (as `redis-cli --cluster create` makes). */
function masterOf(slot: number, masters: number): number {
  return Math.min(masters - 1, Math.floor(slot / (CLUSTER_SLOTS / masters)));
}

describe('queue partitions', () => {
  it('one partition is the queue as it always was', () => {
    expect(partitionQueues('{redis-es-sync}', 'changes', 1)).toEqual([
      { index: 0, count: 1, name: 'changes', prefix: '{redis-es-sync}' },
    ]);
    expect(partitionOf(0, 'any', 1)).toBe(0);
  });

  it('a key always hashes to the same partition, by database and bytes, and keys spread evenly', () => {
    const counts = [0, 0, 0, 0];
    for (let i = 0; i < 20000; i++) {
      const p = partitionOf(0, `user:${i}`, 4);
      expect(p).toBe(partitionOf(0, `user:${i}`, 4));
      counts[p]!++;
    }
    for (const n of counts) expect(n).toBeGreaterThan(20000 / 4 / 1.1);
    // The database is part of the hash: the same name in another database may go elsewhere.
    const differ = Array.from({ length: 100 }, (_, i) => `k${i}`).filter(
      (k) => partitionOf(0, k, 8) !== partitionOf(1, k, 8),
    );
    expect(differ.length).toBeGreaterThan(50);
    // A binary key hashes by its bytes: its escaped form and a UTF-8 look-alike do not collide by construction.
    const binary = keyFromBytes(Buffer.from([0xff, 0x00, 0x41]));
    expect(partitionOf(0, binary, 1024)).toBe(partitionOf(0, keyFromBytes(Buffer.from([0xff, 0x00, 0x41])), 1024));
  });

  it.each([2, 3, 6, 12])(
    'gives each of %i partitions a hash tag of its own, whose slot spreads them evenly over 3 masters',
    (count) => {
      const queues = partitionQueues('{redis-es-sync}', 'changes', count);
      const slots = queues.map(partitionSlot);
      expect(new Set(slots).size).toBe(count);
      slots.forEach((slot, p) => {
        expect(slot).toBeGreaterThanOrEqual((p * CLUSTER_SLOTS) / count);
        expect(slot).toBeLessThan(((p + 1) * CLUSTER_SLOTS) / count);
      });
      const perMaster = [0, 0, 0];
      for (const slot of slots) perMaster[masterOf(slot, 3)]!++;
      if (count % 3 === 0) expect(perMaster).toEqual([count / 3, count / 3, count / 3]);
      else expect(Math.max(...perMaster) - Math.min(...perMaster)).toBeLessThanOrEqual(1);
    },
  );

  it("keeps every key of a partition in one slot (BullMQ's scripts touch several), not the prefix's", () => {
    for (const q of partitionQueues('{redis-es-sync}', 'changes', 6)) {
      expect(q.prefix.startsWith('redis-es-sync:{')).toBe(true);
      const slot = partitionSlot(q);
      for (const suffix of ['wait', 'active', 'meta', 'id', 'events', '123', '123:lock', 'stalled-check'])
        expect(calculateSlot(`${q.prefix}:${q.name}:${suffix}`)).toBe(slot);
      expect(slot).not.toBe(calculateSlot('{redis-es-sync}:changes:wait'));
    }
  });

  it("takes the partitions' keys for the tool's own, with or without a hash tag in the prefix", () => {
    for (const prefix of ['redis-es-sync', '{redis-es-sync}']) {
      for (const q of partitionQueues(prefix, 'changes', 4))
        expect(isOwnKey(prefix, `${q.prefix}:${q.name}:wait`)).toBe(true);
      expect(isOwnKey(prefix, `${prefix}:versions`)).toBe(true);
      expect(isOwnKey(prefix, 'redis-es-syncer:x')).toBe(false);
    }
  });

  it('a worker consumes every partition, or the subset configured; a subset outside the partitions is refused', () => {
    expect(consumedPartitions(4, undefined)).toEqual([0, 1, 2, 3]);
    expect(consumedPartitions(4, [0, 2])).toEqual([0, 2]);
    const base = { redis: { url: 'redis://r:6379' }, elasticsearch: { url: 'http://es:9200' } };
    expect(
      ConfigSchema.parse({ ...base, queue: { url: 'redis://q:6379', partitions: 4 }, worker: { partitions: [0, 2] } })
        .worker.partitions,
    ).toEqual([0, 2]);
    const refused = ConfigSchema.safeParse({
      ...base,
      queue: { url: 'redis://q:6379', partitions: 2 },
      worker: { partitions: [0, 2] },
    });
    expect(refused.success).toBe(false);
    expect(refused.error?.issues[0]?.path).toEqual(['worker', 'partitions']);
  });
});
