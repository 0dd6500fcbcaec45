import type { AppConfig } from '../shared/platform/config/schema';
import { bulkBody } from '../shared/sink/bulk-body';
import type { BulkOperation, ItemOutcome, Sink } from '../shared/sink/port';
import { DocumentRejectedError, SyncError } from '../shared/platform/errors';
import { readKeyStates, type KeyState } from '../shared/core/key-state';
import type { Logger } from '../shared/platform/logger';
import { refusedDocument, toOperation, type DocOperation } from '../shared/core/mapping/document';
import type { KeyRouter } from '../shared/core/mapping/router';
import { bulkDocuments, bulkDuration } from '../shared/platform/metrics';
import type { SourceRedis } from '../shared/platform/redis';
import type { VersionCounter } from '../shared/core/versions';
import { sleep } from '../shared/platform/sleep';
import { backoffDelay, jittered } from '../shared/platform/retry';

export interface WorkItem {
  db: number;
  key: string;
}

export type ItemResult =
  | { ok: true; result: 'indexed' | 'deleted' | 'already-newer' | 'already-absent' | 'skipped' }
  | { ok: false; reason: string };

type Done = Extract<ItemResult, { ok: true }>['result'];

/** The successful results, shared: one per key of every batch otherwise. */
const DONE: Readonly<Record<Done, ItemResult>> = {
  indexed: Object.freeze({ ok: true, result: 'indexed' }),
  deleted: Object.freeze({ ok: true, result: 'deleted' }),
  'already-newer': Object.freeze({ ok: true, result: 'already-newer' }),
  'already-absent': Object.freeze({ ok: true, result: 'already-absent' }),
  skipped: Object.freeze({ ok: true, result: 'skipped' }),
};

/** What must happen once the search engine has answered a bulk that touched these indices. */
export type AfterWrite = (indices: readonly string[]) => Promise<void>;

export interface BulkIndexerDeps {
  sink: Sink;
  source: SourceRedis;
  counter: VersionCounter;
  router: KeyRouter;
  settings: Pick<AppConfig['worker'], 'bulkMaxBytes' | 'maxDocumentBytes' | 'retryBaseMs' | 'retryMaxMs'>;
  logger: Logger;
  /**
   * Runs after every answered bulk with the indices it touched, before its items count as
   * done; a rejection sends the chunk again. The CLI wires the search cache's generation bump
   * here, so the worker need not know the search feature exists.
   */
  afterWrite?: AfterWrite;
  /** Aborted on shutdown: pending retries give up so jobs can go back to the queue. */
  signal?: AbortSignal;
  /**
   * Index → a second index to write the same operation to, at the same version (a rebuild's new
   * generation, shared/core/rebuild-state.ts). Asked on every attempt after its versions are
   * taken (docs/architecture.md, rebuilds): a write that goes to the live generation alone
   * then took its versions before the rebuild's snapshot began (the answer may be cached for
   * less than the rebuild waits before it), so the snapshot reads its key later.
   */
  mirrors?: () => Promise<ReadonlyMap<string, string>>;
}

interface Prepared {
  slot: number;
  op: DocOperation;
  version: number;
  /** The versioned write, its bulk lines built once: their size decides the chunks. */
  operation: BulkOperation;
  /** Set when `op` is the stub that stands in for a value that could not be indexed. */
  refused?: string;
  /** The copy of a write for a rebuild's new generation: its outcome only decides a retry. */
  mirror?: true;
}

/** A retry given up because the worker stops: the job goes back to the queue. */
export class ShutdownError extends SyncError {
  override readonly name = 'ShutdownError';
  readonly code = 'SHUTDOWN';
}

/**
 * Brings the search engine in line with the current state of a set of keys.
 *
 * Every attempt, first and retry alike, takes fresh versions from the counter and only then
 * reads the keys. So a write stamped v carries a value read after every change whose capture
 * version is below v, and external versioning lets the highest version win. Re-reading on
 * every retry also means no write goes out long after its read, so an expired delete
 * tombstone (index.gc_deletes) can never let an old value come back.
 */
export class BulkIndexer {
  constructor(private readonly deps: BulkIndexerDeps) {}

  async index(items: readonly WorkItem[]): Promise<ItemResult[]> {
    // The same key twice in one batch (a snapshot and a live change) is read and written once.
    // Keyed by database, then key: no joined string per item.
    const unique: WorkItem[] = [];
    const slotOf = new Map<number, Map<string, number>>();
    const itemSlots = items.map((item) => {
      let ofDb = slotOf.get(item.db);
      if (ofDb === undefined) {
        ofDb = new Map<string, number>();
        slotOf.set(item.db, ofDb);
      }
      let slot = ofDb.get(item.key);
      if (slot === undefined) {
        slot = unique.push(item) - 1;
        ofDb.set(item.key, slot);
      }
      return slot;
    });

    const results = new Array<ItemResult | undefined>(unique.length);
    // Keys whose document the engine refused: the next attempt writes their stub instead.
    const refusedByEs = new Map<number, string>();
    let pending = unique.map((_, slot) => slot);
    for (let attempt = 0; pending.length > 0; attempt++) {
      if (attempt > 0) await this.backoff(attempt, pending.length);
      let prepared: Prepared[];
      try {
        prepared = await this.prepare(unique, pending, results, refusedByEs);
      } catch (err) {
        if (err instanceof ShutdownError) throw err;
        this.deps.logger.warn({ err, keys: pending.length }, 'reading keys from redis failed; retrying');
        continue;
      }
      pending = await this.send(prepared, results, refusedByEs);
    }
    return itemSlots.map((slot) => results[slot] as ItemResult);
  }

  /** Versions first, then the read: the order the consistency argument rests on. */
  private async prepare(
    unique: readonly WorkItem[],
    slots: readonly number[],
    results: (ItemResult | undefined)[],
    refusedByEs: ReadonlyMap<number, string>,
  ): Promise<Prepared[]> {
    this.throwIfAborted();
    const firstVersion = await this.deps.counter.allocate(slots.length);
    const mirrors = (await this.deps.mirrors?.()) ?? new Map<string, string>();
    // Each slot's key and version (allocated in slot order), grouped by database for the reads.
    const byDb = new Map<number, { slot: number; key: string; version: number }[]>();
    slots.forEach((slot, i) => {
      const item = unique[slot];
      if (item === undefined) throw new Error(`bulk indexer: slot ${slot} is not one of the ${unique.length} items`);
      const entry = { slot, key: item.key, version: firstVersion + i };
      const list = byDb.get(item.db);
      if (list) list.push(entry);
      else byDb.set(item.db, [entry]);
    });
    const prepared: Prepared[] = [];
    for (const [db, entries] of byDb) {
      const states = await readKeyStates(
        this.deps.source.db(db),
        entries.map((e) => e.key),
      );
      entries.forEach(({ slot, key, version }, i) => {
        const route = this.deps.router.route(db, key);
        if (!route) {
          results[slot] = DONE.skipped;
          return;
        }
        const state = states[i];
        // readKeyStates answers one state per key, in order.
        if (state === undefined)
          throw new Error(`readKeyStates returned ${states.length} states for ${entries.length} keys`);
        let refused = refusedByEs.get(slot);
        if (refused === undefined || !state.exists) {
          try {
            const op = toOperation(route, route.shape, db, key, state);
            const operation = bulkBody(op, version);
            const bytes = operation.bytes;
            // One oversized value must not hold up or break the request it would share with others.
            if (bytes <= this.deps.settings.maxDocumentBytes) {
              prepared.push({ slot, op, version, operation });
              return;
            }
            refused = `document is ${bytes} bytes, over worker.maxDocumentBytes (${this.deps.settings.maxDocumentBytes}); not sent`;
          } catch (err) {
            if (!(err instanceof DocumentRejectedError)) throw err;
            refused = err.message;
          }
        }
        prepared.push(this.stub(slot, route, db, key, state, version, refused));
      });
    }
    if (mirrors.size === 0) return prepared;
    return prepared.flatMap((p) => {
      const target = mirrors.get(p.op.index);
      if (target === undefined) return [p];
      const operation = bulkBody({ ...p.op, index: target }, p.version);
      return [p, { ...p, operation, mirror: true as const }];
    });
  }

  /**
   * A key whose value cannot be indexed still gets a write at its version: a stub that says
   * why (or a delete, when even the stub is too big), so its old document stops answering
   * with a value Redis no longer holds. The key is still reported as refused.
   */
  private stub(
    slot: number,
    route: { index: string; id: string },
    db: number,
    key: string,
    state: KeyState,
    version: number,
    refused: string,
  ): Prepared {
    const type = state.exists ? (state.type === 'unsupported' ? state.redisType : state.type) : 'none';
    let op: DocOperation = {
      op: 'index',
      index: route.index,
      id: route.id,
      doc: refusedDocument(db, key, type, refused),
    };
    let operation = bulkBody(op, version);
    if (operation.bytes > this.deps.settings.maxDocumentBytes) {
      op = { op: 'delete', index: route.index, id: route.id };
      operation = bulkBody(op, version);
    }
    return { slot, op, version, operation, refused };
  }

  /** Sends in chunks under bulkMaxBytes; returns the slots to try again. */
  private async send(
    prepared: readonly Prepared[],
    results: (ItemResult | undefined)[],
    refusedByEs: Map<number, string>,
  ): Promise<number[]> {
    const retry: number[] = [];
    await Promise.all(
      chunkByBytes(prepared, this.deps.settings.bulkMaxBytes).map(async (chunk) => {
        let outcomes: ItemOutcome[];
        const { sink } = this.deps;
        bulkDocuments.observe(chunk.length);
        const timer = bulkDuration.startTimer();
        try {
          outcomes = await sink.bulk(
            chunk.map((p) => p.operation),
            { signal: this.deps.signal },
          );
          timer({ outcome: 'ok' });
        } catch (err) {
          if (this.deps.signal?.aborted) throw new ShutdownError('shutting down');
          timer({ outcome: sink.isTransient(err) ? 'retry' : 'error' });
          if (!sink.isTransient(err)) {
            const reason = `bulk request rejected: ${sink.describeError(err)}`;
            for (const p of chunk) results[p.slot] = { ok: false, reason };
            return;
          }
          this.deps.logger.warn({ err, docs: chunk.length }, 'bulk request failed; will retry');
          for (const p of chunk) retry.push(p.slot);
          return;
        }
        if (!(await this.runAfterWrite(chunk))) {
          for (const p of chunk) retry.push(p.slot);
          return;
        }
        chunk.forEach((p, i) => {
          // The sink answers one outcome per operation (an unanswered item is `retry`).
          const outcome = outcomes[i] ?? { kind: 'retry', reason: 'no outcome' };
          if (outcome.kind === 'retry') retry.push(p.slot);
          else if (p.mirror) {
            // The new generation's mapping refuses what the live one took: the rebuild's verify
            // reports the key (missing), and the rebuild stops before its swap.
            if (outcome.kind === 'rejected')
              this.deps.logger.warn(
                { index: p.operation.index, id: p.op.id, reason: outcome.reason },
                'the generation being rebuilt refused a document',
              );
          } else if (p.refused !== undefined) results[p.slot] = { ok: false, reason: p.refused };
          else if (outcome.kind === 'done') results[p.slot] = DONE[outcome.result];
          else {
            // Refused by the engine (a mapping conflict, say): the next attempt replaces the old document with the stub.
            refusedByEs.set(p.slot, outcome.reason);
            retry.push(p.slot);
          }
        });
      }),
    );
    // A write and its mirror may both ask for a retry: the slot is tried once more.
    return [...new Set(retry)];
  }

  /**
   * Whether the after-write hook succeeded for the chunk. Until it has (the search cache's
   * generations, say), a cached answer could outlive this change, so the chunk is not done:
   * it is sent again, and the hook runs again, on the next attempt.
   */
  private async runAfterWrite(chunk: readonly Prepared[]): Promise<boolean> {
    const afterWrite = this.deps.afterWrite;
    if (!afterWrite) return true;
    try {
      await afterWrite(chunk.map((p) => p.op.index));
      return true;
    } catch (err) {
      this.deps.logger.warn(
        { err, docs: chunk.length },
        'after-write hook (search cache generations) failed; will retry',
      );
      return false;
    }
  }

  private async backoff(attempt: number, count: number): Promise<void> {
    const { retryBaseMs, retryMaxMs } = this.deps.settings;
    const delay = jittered(backoffDelay({ baseMs: retryBaseMs, maxMs: retryMaxMs, maxDoublings: 20 }, attempt - 1));
    this.deps.logger.debug({ attempt, count, delayMs: Math.round(delay) }, 'retrying bulk items');
    await sleep(delay, this.deps.signal);
    this.throwIfAborted();
  }

  private throwIfAborted(): void {
    if (this.deps.signal?.aborted) throw new ShutdownError('shutting down');
  }
}

function chunkByBytes(prepared: readonly Prepared[], maxBytes: number): Prepared[][] {
  const chunks: Prepared[][] = [];
  let current: Prepared[] = [];
  let bytes = 0;
  for (const p of prepared) {
    const size = p.operation.bytes + 1;
    if (current.length > 0 && bytes + size > maxBytes) {
      chunks.push(current);
      current = [];
      bytes = 0;
    }
    current.push(p);
    bytes += size;
  }
  if (current.length > 0) chunks.push(current);
  return chunks;
}
