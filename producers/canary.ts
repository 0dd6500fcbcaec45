import type { Redis } from 'ioredis';
// ioredis's own implementation of the Redis Cluster key slot (CRC16 of the hash tag, mod 16384).
import calculateSlot from 'ioredis/built/utils/calculateSlot';
import { writeFreshness, type FreshnessRecord } from '../shared/core/canary';
import type { AppConfig } from '../shared/platform/config/schema';
import type { Logger } from '../shared/platform/logger';
import { freshness } from '../shared/platform/metrics';
import type { RedisClient, SourceRedis } from '../shared/platform/redis';
import type { Sink } from '../shared/sink/port';

export interface CanaryDeps {
  /** The tenure's view of the source: one master under sharded capture, every master otherwise. */
  source: SourceRedis;
  db: number;
  searchSink: Sink;
  /** Where each shard's last measurement is kept for `status`. */
  queueRedis: RedisClient;
  prefix: string;
  /** With the index resolved (`canaryIndex`). */
  settings: AppConfig['producer']['canary'] & { index: string };
  logger: Logger;
}

/** One heartbeat key and what is known of it. */
interface Beat {
  shard: string;
  key: string;
  /** Write times (ms) of the heartbeats not yet found searchable, oldest first. */
  pending: number[];
  /** Write to searchable (ms) of the newest heartbeat found, as the poll saw it. */
  latencyMs?: number;
  seenWrittenAt?: number;
}

/** Unseen heartbeats kept per key: the oldest is what the gauge needs, the rest only to match a later find. */
const MAX_PENDING = 1000;

/**
 * The freshness canary of one tenure: every `intervalMs` it writes a heartbeat key holding the
 * write time into each master it covers (a key whose hash slot lives on that master, so each
 * master's capture is measured), and every `pollMs` it searches the canary index for them.
 * A heartbeat found means the whole path worked: capture, queue, worker, bulk and refresh,
 * because a search (unlike a GET) only sees what a refresh made searchable. The gauge is the
 * latency of the newest heartbeat found, or the age of the oldest one not yet found when that
 * is more, so it rises steadily while anything on the path is stuck. The poll interval bounds
 * how late a find is noticed.
 */
export class FreshnessCanary {
  private readonly beats = new Map<string, Beat>();
  private readonly log: Logger;
  private timer: NodeJS.Timeout | undefined;
  private ticking: Promise<void> | undefined;
  private lastWrite = 0;
  /** Per master node ID and its slot ranges, the hash tag chosen for them (the search is not free). */
  private readonly tags = new Map<string, string>();

  constructor(private readonly deps: CanaryDeps) {
    this.log = deps.logger.child({ component: 'canary' });
  }

  start(): void {
    this.timer = setInterval(() => this.schedule(), this.deps.settings.pollMs);
    this.timer.unref();
    this.schedule();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.ticking;
    // A producer that no longer measures a shard exports nothing for it; the next holder does.
    for (const shard of this.beats.keys()) freshness.remove({ shard });
  }

  private schedule(): void {
    if (this.ticking) return;
    this.ticking = this.tick()
      .catch((err: unknown) => this.log.warn({ err }, 'freshness canary round failed; trying again'))
      .finally(() => {
        this.ticking = undefined;
      });
  }

  private async tick(): Promise<void> {
    if (Date.now() - this.lastWrite >= this.deps.settings.intervalMs) await this.write();
    await this.poll();
    const now = Date.now();
    await Promise.all([...this.beats.values()].map((b) => this.report(b, now)));
  }

  private async write(): Promise<void> {
    this.lastWrite = Date.now();
    const targets = await this.targets();
    const client = this.deps.source.db(this.deps.db);
    // Left behind only by a producer gone for good (a master failed over): it then expires, and its document goes with it.
    const ttlMs = Math.max(60_000, 12 * this.deps.settings.intervalMs);
    for (const { shard, key } of targets) {
      let beat = this.beats.get(shard);
      if (beat?.key !== key) {
        beat = { shard, key, pending: [] };
        this.beats.set(shard, beat);
      }
      const at = Date.now();
      try {
        await client.set(key, String(at), 'PX', ttlMs);
      } catch (err) {
        this.log.warn({ err, shard, key }, 'could not write the heartbeat key (the source user needs write on it)');
        continue;
      }
      beat.pending.push(at);
      if (beat.pending.length > MAX_PENDING) beat.pending.splice(1, 1);
    }
  }

  /** Searches for every heartbeat with one request; a search that fails leaves the heartbeats unseen. */
  private async poll(): Promise<void> {
    const waiting = [...this.beats.values()].filter((b) => b.pending.length > 0);
    if (waiting.length === 0) return;
    const { index, pollMs } = this.deps.settings;
    let hits;
    try {
      ({ hits } = await this.deps.searchSink.search(
        index,
        { query: { ids: { values: waiting.map((b) => b.key) } }, size: waiting.length, _source: ['value'] },
        { timeoutMs: Math.max(1000, 2 * pollMs) },
      ));
    } catch (err) {
      this.log.debug({ err }, 'canary search failed: the heartbeats count as not searchable yet');
      return;
    }
    const now = Date.now();
    for (const hit of hits) {
      const beat = waiting.find((b) => b.key === hit.id);
      const written = Number(hit.source.value);
      if (!beat || !Number.isFinite(written) || beat.pending[0] === undefined || written < beat.pending[0]) continue;
      beat.latencyMs = now - written;
      beat.seenWrittenAt = written;
      beat.pending = beat.pending.filter((t) => t > written);
    }
  }

  private async report(beat: Beat, now: number): Promise<void> {
    const oldest = beat.pending[0];
    // Nothing written yet (the first write failed): nothing to say about this shard.
    if (beat.latencyMs === undefined && oldest === undefined) return;
    const freshnessMs = Math.max(beat.latencyMs ?? 0, oldest === undefined ? 0 : now - oldest);
    freshness.set({ shard: beat.shard }, freshnessMs / 1000);
    const rec: FreshnessRecord = {
      shard: beat.shard,
      key: beat.key,
      freshnessMs,
      ...(beat.seenWrittenAt !== undefined ? { seenWrittenAt: beat.seenWrittenAt } : {}),
      measuredAt: now,
    };
    await writeFreshness(this.deps.queueRedis, this.deps.prefix, rec).catch((err: unknown) =>
      this.log.debug({ err }, 'could not record the freshness in the queue Redis'),
    );
  }

  /** The heartbeat key of each master this tenure covers (listed afresh: failovers and resharding move them). */
  private async targets(): Promise<{ shard: string; key: string }[]> {
    const { keyPrefix } = this.deps.settings;
    const nodes = await this.deps.source.masters(this.deps.db);
    if (!this.deps.source.isCluster) return [{ shard: 'source', key: `${keyPrefix}source` }];
    const out: { shard: string; key: string }[] = [];
    for (const node of nodes) {
      const owned = await ownSlots(node.client);
      if (!owned || owned.ranges.length === 0) continue;
      const memo = `${owned.id} ${JSON.stringify(owned.ranges)}`;
      let tag = this.tags.get(memo);
      if (tag === undefined) {
        tag = tagIn(owned.ranges);
        this.tags.set(memo, tag);
      }
      out.push({ shard: owned.id, key: `${keyPrefix}{${tag}}` });
    }
    return out;
  }
}

/** A master's node ID and the slot ranges it serves, by its own answer. */
async function ownSlots(client: Redis): Promise<{ id: string; ranges: [number, number][] } | undefined> {
  const id = (await client.cluster('MYID')).trim();
  const slots = (await client.cluster('SLOTS')) as unknown as [number, number, [string, number, string?]][];
  const ranges = slots.filter((s) => s[2][2] === id).map((s): [number, number] => [s[0], s[1]]);
  return id === '' ? undefined : { id, ranges };
}

/** The first tag `hb<n>` whose slot lies in one of the ranges (about 16384 / owned slots tries). */
export function tagIn(ranges: readonly (readonly [number, number])[]): string {
  for (let n = 0; ; n++) {
    const tag = `hb${n}`;
    const slot = calculateSlot(tag);
    if (ranges.some(([low, high]) => slot >= low && slot <= high)) return tag;
  }
}
