import type { RedisClient } from '../platform/redis';

/**
 * Which failed jobs (or refused keys) to retry; every given criterion must hold. Beside the
 * store, which matches its records with it; replay parses it from the command's flags.
 */
export interface ReplayFilter {
  /** Over the job's failure reason (Elasticsearch's error). */
  reason?: RegExp;
  /** Over the job's keys: a job matches when any of its keys does. */
  pattern?: RegExp;
  /** Failed at or after (ms since epoch). */
  since?: number;
  /** Failed at or before (ms since epoch). */
  until?: number;
}

/**
 * One refused key: why, where it would have gone, since when and how often. Kept in the
 * queue Redis (`<prefix>:failures`, a hash with one field per key), so any number of
 * workers record into, and the CLI reads from, the same place.
 */
export interface FailureRecord {
  db: number;
  /** Escaped form (shared/core/bytes.ts): binary keys survive the round trip. */
  key: string;
  /** The index its document would be written to; empty when no rule routes it any more. */
  index: string;
  reason: string;
  /** Coarse class of the reason, for metrics and filters (`reasonClass`). */
  reasonClass: string;
  /** ms since epoch. */
  firstSeen: number;
  lastSeen: number;
  /** How many times the key was refused since it was first recorded. */
  attempts: number;
}

export interface Refusal {
  db: number;
  key: string;
  index: string;
  reason: string;
}

export function failuresKey(prefix: string): string {
  return `${prefix}:failures`;
}

/**
 * The hash field of a key. JSON escapes the lone surrogates that stand for non-UTF-8 bytes
 * (`\udc80`…), so a binary key is stored without loss; ioredis would turn them into U+FFFD.
 */
export function fieldOf(db: number, key: string): string {
  return JSON.stringify([db, key]);
}

/**
 * Records are updated in one script so two workers refusing the same key at once still
 * leave one record with both attempts counted. The key never passes through cjson (it would
 * mangle escaped bytes): it stays in the field, the record only holds ASCII-safe JSON.
 */
const RECORD_SCRIPT = `
local now = tonumber(ARGV[1])
for i = 2, #ARGV, 4 do
  local field = ARGV[i]
  local first = now
  local attempts = 1
  local old = redis.call('HGET', KEYS[1], field)
  if old then
    local ok, rec = pcall(cjson.decode, old)
    if ok and type(rec) == 'table' then
      first = tonumber(rec.firstSeen) or now
      attempts = (tonumber(rec.attempts) or 0) + 1
    end
  end
  redis.call('HSET', KEYS[1], field, cjson.encode({ index = ARGV[i + 1], reason = ARGV[i + 2], reasonClass = ARGV[i + 3], firstSeen = first, lastSeen = now, attempts = attempts }))
end
return 1
`;

/**
 * The class of a refusal reason: Elasticsearch's error type when the reason carries one
 * (`403 cluster_block_exception: …` → `cluster_block_exception`), else what the tool itself
 * refused for. Bounded, so it can label a metric.
 */
export function reasonClass(reason: string): string {
  const es = /\b\d{3} ([a-z_]+_exception)\b/.exec(reason)?.[1];
  if (es !== undefined) return es;
  if (reason.includes('over worker.maxDocumentBytes')) return 'too_large';
  if (reason.startsWith('bulk request rejected')) return 'bulk_rejected';
  if (reason.startsWith('transform failed')) return 'transform';
  if (reason.includes('(rule has json: true)')) return 'not_json';
  if (reason.includes('cannot coerce')) return 'coerce';
  return 'other';
}

/** Per-key failures in the queue Redis: recorded by workers, listed and replayed by the CLI. */
export class FailureStore {
  readonly key: string;

  constructor(
    private readonly redis: RedisClient,
    prefix: string,
  ) {
    this.key = failuresKey(prefix);
  }

  /**
   * Records `refused` and forgets `indexed` in one round trip (the worker calls it once per
   * job). A key indexed fine is removed whatever it was refused for before.
   */
  async update(
    refused: readonly Refusal[],
    indexed: readonly { db: number; key: string }[],
    now = Date.now(),
  ): Promise<void> {
    if (refused.length === 0 && indexed.length === 0) return;
    // The common case, on every job: one command, not a MULTI of one.
    if (refused.length === 0) {
      // Nearly always there is no record at all: one HLEN spares the worker writing, and the
      // queue Redis parsing, a field per key of the job. A record added after the HLEN is one a
      // HDEL sent at that moment would have missed as well.
      if ((await this.redis.hlen(this.key)) === 0) return;
      await this.redis.hdel(this.key, ...indexed.map((k) => fieldOf(k.db, k.key)));
      return;
    }
    const multi = this.redis.multi();
    if (indexed.length > 0) multi.hdel(this.key, ...indexed.map((k) => fieldOf(k.db, k.key)));
    const args: string[] = [String(now)];
    for (const r of refused) args.push(fieldOf(r.db, r.key), r.index, r.reason, reasonClass(r.reason));
    multi.eval(RECORD_SCRIPT, 1, this.key, ...args);
    const replies = await multi.exec();
    const failed = replies?.find(([err]) => err);
    if (failed?.[0]) throw failed[0];
  }

  async count(): Promise<number> {
    return this.redis.hlen(this.key);
  }

  /** Pages through every record (HSCAN), `pageSize` at a time; memory stays with one page. */
  async *records(pageSize = 500): AsyncGenerator<FailureRecord> {
    let cursor = '0';
    do {
      const [next, flat] = await this.redis.hscan(this.key, cursor, 'COUNT', pageSize);
      cursor = next;
      for (let i = 1; i < flat.length; i += 2) {
        const [field, value] = [flat[i - 1], flat[i]];
        if (field === undefined || value === undefined) continue; // not reached: i - 1 and i are in range
        const rec = parseRecord(field, value);
        if (rec) yield rec;
      }
    } while (cursor !== '0');
  }

  /** Every record matching the filter (reason, key glob, last seen in the time range). */
  async matching(filter: ReplayFilter): Promise<FailureRecord[]> {
    const out: FailureRecord[] = [];
    for await (const rec of this.records()) if (matchesRecord(rec, filter)) out.push(rec);
    return out;
  }

  async remove(keys: readonly { db: number; key: string }[]): Promise<void> {
    if (keys.length > 0) await this.redis.hdel(this.key, ...keys.map((k) => fieldOf(k.db, k.key)));
  }
}

export function matchesRecord(rec: FailureRecord, filter: ReplayFilter): boolean {
  if (filter.reason && !filter.reason.test(rec.reason)) return false;
  if (filter.since !== undefined && rec.lastSeen < filter.since) return false;
  if (filter.until !== undefined && rec.lastSeen > filter.until) return false;
  if (filter.pattern && !filter.pattern.test(rec.key)) return false;
  return true;
}

function parseRecord(field: string, value: string): FailureRecord | undefined {
  try {
    const [db, key] = JSON.parse(field) as [unknown, unknown];
    const v = JSON.parse(value) as Partial<Record<keyof FailureRecord, unknown>>;
    if (typeof db !== 'number' || typeof key !== 'string') return undefined;
    return {
      db,
      key,
      index: typeof v.index === 'string' ? v.index : '',
      reason: typeof v.reason === 'string' ? v.reason : '',
      reasonClass: typeof v.reasonClass === 'string' ? v.reasonClass : 'other',
      firstSeen: Number(v.firstSeen) || 0,
      lastSeen: Number(v.lastSeen) || 0,
      attempts: Number(v.attempts) || 0,
    };
  } catch {
    // A field someone wrote by hand: not ours to interpret.
    return undefined;
  }
}
