import { keyFromBytes } from '../../../shared/core/bytes';
import { LeaseLostError, RedisSetupError } from '../../../shared/platform/errors';
import type { Logger } from '../../../shared/platform/logger';
import { redactUrl } from '../../../shared/platform/logger';
import type { ChangeSink } from '../../change-sink';
import { enqueueVanished, reconcile } from '../../reconcile';
import type { CaptureContext } from '../types';
import { replicationConfig } from './config';
import type { ReplicationCheckpoint, StreamPosition } from './checkpoint';
import type { CommandKeys } from './command-keys';
import { readCommand } from './command-stream';
import { RdbFormatError, readRdbKeys } from './rdb';
import { ReplicaLink, type PsyncOutcome, type ReplicationPosition } from './replica-link';
import { backoffDelay, type Backoff } from '../../../shared/platform/retry';
import { sleep } from '../../../shared/platform/sleep';

const ACK_EVERY_MS = 1000;
const CHECKPOINT_EVERY_MS = 1000;
const CONNECT_TIMEOUT_MS = 10_000;
/** Reconnecting as a replica: 400 ms … 30 s. */
const RECONNECT: Backoff = { baseMs: 200, maxMs: 30_000, maxDoublings: 8 };
/** A reconciliation the checkpoint waits for: 1 s … 30 s. */
const BACKGROUND_RETRY: Backoff = { baseMs: 500, maxMs: 30_000, maxDoublings: 6 };
/** How often a snapshot transfer under way is logged. */
const PROGRESS_EVERY_MS = 5000;

interface Session {
  link: ReplicaLink;
  outcome: PsyncOutcome;
  /** The position PSYNC asked to continue from. */
  from: StreamPosition | undefined;
}

export interface MasterReplicationDeps {
  ctx: CaptureContext;
  /** The master's URL (credentials included: never logged unredacted). */
  url: string;
  /** This master's own checkpoint. */
  checkpoint: ReplicationCheckpoint;
  /**
   * Where to ask the master to continue from at start: this master's checkpoint, or on a
   * promoted Cluster master the checkpoint of the master it took over from.
   */
  resume: () => Promise<StreamPosition | undefined>;
  keys: CommandKeys;
  logger: Logger;
}

/**
 * Replication of one master: the producer connects to it as a replica. A full
 * resynchronization sends an RDB snapshot, whose keys are enqueued (and documents of keys it
 * lacks are enqueued for deletion); then every write the master executes arrives as a
 * command, whose keys are captured. Every change is seen, flushes included.
 *
 * The checkpoint (replication id + offset) is saved only once every change up to that offset
 * is in the queue and every flush before it was reconciled, and only under the lease (a
 * fenced write), so a restart or a takeover resumes with PSYNC from there (CONTINUE) and
 * loses nothing; when the master's backlog no longer holds that offset, it answers with a full
 * resynchronization instead. A tenure whose enqueue or checkpoint was refused for a lost lease
 * stops: it saves nothing more.
 */
export class MasterReplication {
  private readonly sink: ChangeSink;
  private readonly log: Logger;
  private readonly checkpoint: ReplicationCheckpoint;
  private readonly databases: Set<number>;
  private readonly abort = new AbortController();
  private link: ReplicaLink | undefined;
  /** Offset of the last stream byte processed; undefined while a snapshot loads. */
  private position: ReplicationPosition | undefined;
  private db = 0;
  private loop: Promise<void> | undefined;
  private loading: Promise<void> | undefined;
  /** Background work the checkpoint must wait for (reconciliations after flushes and resyncs), run one at a time. */
  private work: Promise<void> = Promise.resolve();
  private pendingWork = 0;
  private workFailed = false;
  private ackTimer: NodeJS.Timeout | undefined;
  private checkpointTimer: NodeJS.Timeout | undefined;
  private checkpointing: Promise<void> | undefined;
  private leaseLost = false;
  /** Replicated commands whose keys could not be told (each led to a reconciliation). */
  readonly unknownCommands = new Set<string>();
  fullResyncs = 0;
  partialResyncs = 0;
  /** While stop() waits: what for (for the log line of a stop that does not end). */
  stopping: string | undefined;

  private readonly url: string;
  private readonly deps: CaptureContext;
  private readonly keys: CommandKeys;
  private readonly resume: () => Promise<StreamPosition | undefined>;

  constructor(link: MasterReplicationDeps) {
    this.deps = link.ctx;
    this.url = link.url;
    this.log = link.logger;
    this.sink = link.ctx.sink;
    this.checkpoint = link.checkpoint;
    this.keys = link.keys;
    this.resume = link.resume;
    this.databases = new Set(link.ctx.config.redis.databases);
  }

  /** Resolves once the master accepted us as a replica; a snapshot then loads in the background. */
  async start(): Promise<void> {
    const saved = await this.resume();
    // A full resynchronization answers only once the master starts its snapshot (after
    // repl-diskless-sync-delay, 5 s by default); the lease is renewed meanwhile.
    this.log.info(
      { source: redactUrl(this.url), from: saved },
      saved
        ? 'asking the master to continue from the last checkpoint (PSYNC)'
        : 'no checkpoint: asking the master for a full resynchronization (PSYNC)',
    );
    const session = await this.connect(saved);
    this.log.info(
      { source: redactUrl(this.url), resync: session.outcome.kind, from: saved },
      session.outcome.kind === 'continue'
        ? 'replicating from the source Redis: continuing after the last checkpoint, nothing before it is missed'
        : 'replicating from the source Redis: full resynchronization (snapshot, then removal of the documents it lacks)',
    );
    this.loop = this.run(session);
    this.ackTimer = setInterval(() => this.sendAck(), ACK_EVERY_MS);
    this.checkpointTimer = setInterval(() => void this.saveCheckpoint(), CHECKPOINT_EVERY_MS);
  }

  /** Resolves when the snapshot under way (if any) is enqueued and no reconciliation is pending. */
  async idle(): Promise<void> {
    for (;;) {
      if (this.loading) await this.loading;
      if (this.pendingWork === 0 && this.loading === undefined) return;
      await this.work;
    }
  }

  async stop(): Promise<void> {
    this.abort.abort();
    if (this.ackTimer) clearInterval(this.ackTimer);
    if (this.checkpointTimer) clearInterval(this.checkpointTimer);
    this.link?.close();
    this.stopping = 'the replication loop';
    await this.loop;
    this.stopping = 'background work';
    await this.work;
    this.stopping = 'a checkpoint write';
    await this.checkpointing;
    this.stopping = undefined;
  }

  /** Once the host's last flush is done, the position it covers is saved (unless work before it failed). */
  async close({ leaseLost }: { leaseLost?: LeaseLostError }): Promise<void> {
    if (leaseLost) this.onLeaseLost(leaseLost);
    if (!this.workFailed && !this.leaseLost) await this.saveCheckpoint();
  }

  /** Reconciliations are background work the checkpoint waits for, so this mode runs them itself. */
  requestReconcile(): void {
    this.background('reconciliation', async (signal) => {
      await reconcile(this.deps.reconcileDeps, { ...this.deps.reconcileSettings, signal });
    });
  }

  private async connect(from: StreamPosition | undefined): Promise<Session> {
    const link = await ReplicaLink.open(this.url, CONNECT_TIMEOUT_MS);
    if (this.stopRequested()) {
      link.close();
      throw new Error('replication stopped while connecting');
    }
    // PSYNC may wait as long as the master likes (a replica waits for its own master): stop() closes this link then.
    this.link = link;
    try {
      const outcome = await link.psync(from);
      return { link, outcome, from };
    } catch (err) {
      link.close();
      throw err;
    }
  }

  private async run(first: Session): Promise<void> {
    let session: Session | undefined = first;
    let failures = 0;
    while (!this.abort.signal.aborted) {
      if (session === undefined) {
        try {
          session = await this.connect(this.position && { ...this.position, db: this.db });
          this.log.info({ resync: session.outcome.kind }, 'replication link re-established');
        } catch (err) {
          failures++;
          const delay = backoffDelay(RECONNECT, failures);
          const level = err instanceof RedisSetupError ? 'error' : 'warn';
          this.log[level]({ err, retryInMs: delay }, 'cannot reconnect to the source Redis as a replica');
          await sleep(delay, this.abort.signal);
          continue;
        }
      }
      this.link = session.link;
      try {
        if (session.outcome.kind === 'full') {
          this.loading = this.loadSnapshot(session.link, session.outcome.position);
          try {
            await this.loading;
          } finally {
            this.loading = undefined;
          }
        } else {
          const from = session.from as StreamPosition;
          this.position = { replid: session.outcome.replid, offset: from.offset };
          this.db = from.db;
          this.partialResyncs++;
          this.log.info(
            { replid: this.position.replid, offset: this.position.offset },
            'partial resynchronization: continuing the stream',
          );
        }
        failures = 0;
        await this.follow(session.link);
      } catch (err) {
        if (err instanceof LeaseLostError) this.onLeaseLost(err);
        else if (!this.stopRequested()) this.log.warn({ err }, 'replication link lost; reconnecting');
      }
      session.link.close();
      session = undefined;
      if (!this.stopRequested()) await sleep(200, this.abort.signal);
    }
  }

  /**
   * Reads the RDB and enqueues its keys, batch by batch per database. Until it is done there is
   * no position to checkpoint: a restart meanwhile starts over from the previous checkpoint.
   */
  private async loadSnapshot(link: ReplicaLink, position: ReplicationPosition): Promise<void> {
    this.position = undefined;
    const started = Date.now();
    const header = await link.rdbHeader();
    const reader = link.reader;
    const begin = reader.consumed;
    const batchKeys = this.deps.config.producer.snapshotBatchKeys;
    const batches = new Map<number, string[]>();
    let keys = 0;
    const total = 'length' in header ? header.length : undefined;
    this.log.info({ bytes: total ?? 'until the EOF marker' }, 'receiving the snapshot');
    const progress = setInterval(
      () =>
        this.log.info(
          { received: reader.consumed - begin, total, keys, ms: Date.now() - started },
          'receiving the snapshot',
        ),
      PROGRESS_EVERY_MS,
    );
    try {
      for await (const record of readRdbKeys(reader, { logger: this.log })) {
        if (record.kind !== 'key' || !this.databases.has(record.db)) continue;
        const batch = batches.get(record.db) ?? [];
        batch.push(record.key);
        batches.set(record.db, batch);
        keys++;
        if (batch.length >= batchKeys) {
          batches.delete(record.db);
          await this.sink.enqueueKeys(record.db, batch, replicationConfig.source);
        }
      }
      for (const [db, batch] of batches) await this.sink.enqueueKeys(db, batch, replicationConfig.source);
    } finally {
      clearInterval(progress);
    }
    if ('length' in header) {
      if (reader.consumed - begin !== header.length) {
        throw new RdbFormatError(
          `the snapshot was announced as ${header.length} bytes but its RDB took ${reader.consumed - begin}`,
        );
      }
    } else {
      const marker = await reader.bytes(header.eofMarker.length);
      if (!marker.equals(header.eofMarker))
        throw new RdbFormatError('the diskless snapshot does not end with its EOF marker');
    }
    reader.stopChecksum();
    this.db = 0;
    this.position = { ...position };
    this.fullResyncs++;
    // A diskless master starts the stream only after the first ACK.
    link.ack(position.offset);
    this.log.info(
      {
        keys,
        bytes: reader.consumed - begin,
        ms: Date.now() - started,
        replid: position.replid,
        offset: position.offset,
      },
      'full resynchronization: snapshot enqueued',
    );
    // Documents whose keys the snapshot lacks were deleted while we were away (or the master restarted empty).
    this.background('removal of documents the snapshot lacks', async (signal) => {
      await enqueueVanished(
        this.deps.reconcileDeps,
        this.deps.config.redis.databases,
        signal,
        this.deps.reconcileSettings.guard,
      );
    });
  }

  /** Applies the command stream until the link fails; the offset advances by each command's bytes. */
  private async follow(link: ReplicaLink): Promise<void> {
    const reader = link.reader;
    for (;;) {
      const before = reader.consumed;
      const args = await readCommand(reader);
      await this.apply(link, args);
      (this.position as ReplicationPosition).offset += reader.consumed - before;
    }
  }

  private async apply(link: ReplicaLink, args: Buffer[]): Promise<void> {
    const name = (args[0] ?? Buffer.alloc(0)).toString('latin1').toLowerCase();
    const arg = (i: number): string => (args[i] ?? Buffer.alloc(0)).toString('utf8');
    const key = (i: number): string => keyFromBytes(args[i] ?? Buffer.alloc(0));
    switch (name) {
      case 'select':
        this.db = Number(arg(1));
        return;
      case 'replconf':
        if (arg(1).toLowerCase() === 'getack') link.ack((this.position as ReplicationPosition).offset);
        return;
      case 'flushdb':
        this.afterFlush([this.db], 'FLUSHDB');
        return;
      case 'flushall':
        this.afterFlush([...this.databases], 'FLUSHALL');
        return;
      case 'swapdb':
        this.afterFlush([Number(arg(1)), Number(arg(2))], 'SWAPDB');
        return;
      case 'move':
        this.capture(this.db, key(1));
        this.capture(Number(arg(2)), key(1));
        return;
      case 'copy': {
        // COPY src dst [DB n] [REPLACE]: the destination may live in another database.
        const dbAt = args.findIndex((a, i) => i >= 3 && a.toString('latin1').toLowerCase() === 'db');
        this.capture(dbAt > 0 ? Number(arg(dbAt + 1)) : this.db, key(2));
        return;
      }
    }
    const keys = await this.keys.keys(args);
    if (keys === 'unknown') {
      // A change we cannot attribute to keys must not be lost: reconcile everything instead.
      if (!this.unknownCommands.has(name)) {
        this.unknownCommands.add(name);
        this.log.warn({ command: name }, 'replicated command with unknown key positions; reconciling instead');
      }
      this.requestReconcile();
      return;
    }
    for (const key of keys) this.capture(this.db, key);
  }

  private capture(db: number, key: string): void {
    if (this.databases.has(db)) this.sink.capture(db, key, replicationConfig.source);
  }

  /** Flushes delete without naming keys: reconcile those databases (their remaining documents go). */
  private afterFlush(dbs: number[], command: string): void {
    const databases = [...new Set(dbs)].filter((d) => this.databases.has(d));
    if (databases.length === 0) return;
    this.log.info({ command, databases }, 'flush replicated; reconciling the databases');
    this.background(`reconciliation after ${command}`, async (signal) => {
      await reconcile(this.deps.reconcileDeps, { ...this.deps.reconcileSettings, databases, signal });
    });
  }

  /** Queues work the checkpoint waits for; retried until it succeeds or the producer stops. */
  private background(what: string, task: (signal: AbortSignal) => Promise<void>): void {
    if (this.abort.signal.aborted) return;
    this.pendingWork++;
    this.work = this.work.then(async () => {
      let failures = 0;
      try {
        while (!this.abort.signal.aborted) {
          try {
            await task(this.abort.signal);
            if (!this.stopRequested()) return;
          } catch (err) {
            if (err instanceof LeaseLostError) {
              this.onLeaseLost(err);
              break;
            }
            failures++;
            const delay = backoffDelay(BACKGROUND_RETRY, failures);
            this.log.warn({ err, retryInMs: delay }, `${what} failed; retrying`);
            await sleep(delay, this.abort.signal);
          }
        }
        // Stopped before it finished: the checkpoint must stay before the change that needed it.
        this.workFailed = true;
      } finally {
        this.pendingWork--;
      }
    });
  }

  /**
   * Another producer leads now. It resumes from the last checkpoint saved under our fence,
   * which covers only what was enqueued, so this tenure just stops: it enqueues, acknowledges
   * to the master and checkpoints nothing more.
   */
  private onLeaseLost(err: LeaseLostError): void {
    if (this.leaseLost) return;
    this.leaseLost = true;
    this.log.warn(
      { err },
      'producer lease lost: replication stops; the next leader resumes from the last checkpoint saved under the lease',
    );
    this.abort.abort();
    if (this.ackTimer) clearInterval(this.ackTimer);
    if (this.checkpointTimer) clearInterval(this.checkpointTimer);
    this.link?.close();
  }

  private sendAck(): void {
    if (this.position !== undefined) this.link?.ack(this.position.offset);
  }

  /** Saves the current position once everything before it is in the queue. One save at a time. */
  private saveCheckpoint(): Promise<void> {
    if (this.checkpointing) return this.checkpointing;
    if (this.position === undefined || this.leaseLost) return Promise.resolve();
    // Offset and database change together only between commands, so this pair is consistent.
    const position: StreamPosition = { ...this.position, db: this.db };
    this.checkpointing = (async () => {
      try {
        await this.work;
        if (this.workFailed) return;
        await this.sink.flush();
        await this.checkpoint.save(position);
      } catch (err) {
        if (err instanceof LeaseLostError) this.onLeaseLost(err);
        else this.log.warn({ err }, 'saving the replication checkpoint failed; retrying');
      } finally {
        this.checkpointing = undefined;
      }
    })();
    return this.checkpointing;
  }

  /**
   * The abort signal read through a call: after an `await`, stop() may have aborted it, but a
   * property read would keep the narrowing of an earlier check (tsc does not forget it across awaits).
   */
  private stopRequested(): boolean {
    return this.abort.signal.aborted;
  }
}
