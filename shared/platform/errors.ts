/**
 * The process's exit codes (docs/operations.md, Exit codes). Scripts and orchestrators branch on them, so
 * they never change meaning: 1 is worth retrying later, 2 needs someone to fix something.
 */
export const EXIT = {
  ok: 0,
  /** Out of sync (verify), a dependency down or failing, any unexpected error. */
  failure: 1,
  /** Invalid configuration, wrong credentials or permissions, an endpoint that is not what it should be. */
  config: 2,
  /** The command line itself is wrong (sysexits EX_USAGE); usage is printed. */
  usage: 64,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/**
 * The base of every error the tool raises on purpose: a stable `code` that logs (`err.code`),
 * scripts and alerts can match on, and the underlying error as `cause` (pino serializes the
 * chain), so a message can stay one readable line.
 *
 * Operator-facing codes (they never change meaning; the exit code is `exitCodeOf`):
 * - `CONFIG_INVALID` (exit 2): the configuration is invalid; `issues` names each field and where its value came from.
 * - `USAGE` (exit 64): a flag or argument the command cannot use.
 * - `REDIS_SETUP` (exit 2): Redis is not set up the way the capture mode needs (notification flags, version, replica rights).
 * - `DEPENDENCIES` (exit 1 or 2): several dependencies failed at once; each is a `DependencyError` in `errors`.
 * - `REDIS_UNREACHABLE`, `REDIS_TIMEOUT`, `REDIS_ERROR`, `ES_UNREACHABLE`, `ES_TIMEOUT`, `ES_UNAVAILABLE`,
 *   `ES_ERROR` (exit 1): a dependency is down or failing; long-running roles wait for it.
 * - `REDIS_AUTH`, `REDIS_PERMISSION`, `REDIS_PROTOCOL`, `REDIS_TLS`, `ES_AUTH`, `ES_FORBIDDEN`, `ES_PROTOCOL`,
 *   `ES_TLS`, `ES_UNSUPPORTED` (a search engine, product or version, this build does not support) (exit 2): credentials, permissions, protocol or certificate are wrong; waiting cannot help.
 * - `MASS_DELETION_REFUSED` (exit 1): a reconciliation would have deleted more than `producer.deletionGuard` allows.
 * - `DOCUMENT_REJECTED`: a key's document was refused for good (by a rule, its size or Elasticsearch); the key goes
 *   to the failure store with the reason (replay after a fix), its job completes.
 * - `LEASE_LOST`: this producer no longer holds the lease; logged when a leader steps down.
 * - `SEARCH_REQUEST`: a search API request was refused (its `status` is the HTTP answer).
 * - `RDB_FORMAT`, `REPLICATION_STREAM`: the replication stream could not be read; the producer reconnects.
 * - `SHUTDOWN`: work cut short by a stop; the job goes back to the queue.
 * - `REBUILD_REFUSED`, `REBUILD_VERIFY_FAILED` (exit 1): `rebuild` could not start, or its new generation was
 *   out of sync; the aliases are untouched (features/maintenance/rebuild).
 */
export abstract class SyncError extends Error {
  abstract readonly code: string;
}

/** Raised at start-up when configuration is invalid; the message names the field. */
export class ConfigError extends SyncError {
  override readonly name = 'ConfigError';
  readonly code = 'CONFIG_INVALID';
  constructor(
    message: string,
    readonly issues: readonly ConfigIssue[] = [],
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** A flag or argument the command cannot use; the message names it. */
export class UsageError extends SyncError {
  override readonly name = 'UsageError';
  readonly code = 'USAGE';
}

export interface ConfigIssue {
  /** Dotted path in the config, e.g. `worker.bulkMaxDocs`. */
  field: string;
  /** Where the value came from, e.g. `env REDIS_URL`, `flag --redis-url`, `file sync.yml`. */
  source?: string;
  reason: string;
}

/** Raised when Redis is not configured the way a capture mode needs. */
export class RedisSetupError extends SyncError {
  override readonly name = 'RedisSetupError';
  readonly code = 'REDIS_SETUP';
}

/**
 * Elasticsearch refused a document for a reason retrying cannot fix (mapping conflict,
 * malformed document). The job fails with this reason so it can be inspected and replayed.
 */
export class DocumentRejectedError extends SyncError {
  override readonly name = 'DocumentRejectedError';
  readonly code = 'DOCUMENT_REJECTED';
}

export type DependencyName = 'source-redis' | 'queue-redis' | 'elasticsearch';

/**
 * Why a dependency could not be used. The `*_UNREACHABLE`, `*_TIMEOUT`, `ES_UNAVAILABLE` and
 * `*_ERROR` codes may pass by themselves (exit 1; long-running roles wait them out); the others
 * need the configuration or the server fixed (exit 2; every role stops).
 */
export type DependencyErrorCode =
  | 'REDIS_UNREACHABLE'
  | 'REDIS_TIMEOUT'
  | 'REDIS_AUTH'
  | 'REDIS_PERMISSION'
  | 'REDIS_PROTOCOL'
  | 'REDIS_TLS'
  | 'REDIS_ERROR'
  | 'ES_UNREACHABLE'
  | 'ES_TIMEOUT'
  | 'ES_AUTH'
  | 'ES_FORBIDDEN'
  | 'ES_UNAVAILABLE'
  | 'ES_PROTOCOL'
  | 'ES_TLS'
  | 'ES_UNSUPPORTED'
  | 'ES_ERROR';

const PERMANENT: ReadonlySet<DependencyErrorCode> = new Set([
  'REDIS_AUTH',
  'REDIS_PERMISSION',
  'REDIS_PROTOCOL',
  'REDIS_TLS',
  'ES_AUTH',
  'ES_FORBIDDEN',
  'ES_PROTOCOL',
  'ES_TLS',
  'ES_UNSUPPORTED',
]);

export const DEPENDENCY_LABELS: Record<DependencyName, string> = {
  'source-redis': 'source Redis',
  'queue-redis': 'queue Redis',
  elasticsearch: 'Elasticsearch',
};

/**
 * A dependency is down, slow or not what the configuration says. The message is one line an
 * operator can act on: which dependency, its endpoint (password masked), what happened, what
 * to check. The driver's error is the `cause` (logged at debug, never printed as a stack).
 */
export class DependencyError extends SyncError {
  override readonly name = 'DependencyError';
  constructor(
    readonly code: DependencyErrorCode,
    readonly dependency: DependencyName,
    /** Masked: never holds a password. */
    readonly endpoint: string,
    readonly detail: string,
    readonly hint: string,
    options?: ErrorOptions,
  ) {
    super(`${DEPENDENCY_LABELS[dependency]} ${endpoint}: ${detail}${hint ? `; ${hint}` : ''}`, options);
  }

  /** True when waiting cannot help: wrong credentials, permissions, protocol or certificate. */
  get permanent(): boolean {
    return PERMANENT.has(this.code);
  }
}

/** Several dependencies failed their start-up check at once; each is named on its own line. */
export class DependenciesError extends SyncError {
  override readonly name = 'DependenciesError';
  readonly code = 'DEPENDENCIES';
  constructor(readonly errors: readonly DependencyError[]) {
    super(errors.map((e) => e.message).join('\n'), { cause: errors[0] });
  }

  get permanent(): boolean {
    return this.errors.some((e) => e.permanent);
  }
}

/** The exit code for an error that ended a command (docs/operations.md, Exit codes). */
export function exitCodeOf(err: unknown): ExitCode {
  if (err instanceof UsageError) return EXIT.usage;
  if (err instanceof ConfigError || err instanceof RedisSetupError) return EXIT.config;
  if (err instanceof DependencyError || err instanceof DependenciesError)
    return err.permanent ? EXIT.config : EXIT.failure;
  return EXIT.failure;
}

/**
 * This producer is no longer the lease holder: an enqueue or a position write was refused.
 * Whoever gets it must persist and acknowledge nothing more; the next leader resumes from
 * the last position written under a valid fence, which does not cover what was refused.
 */
export class LeaseLostError extends SyncError {
  override readonly name = 'LeaseLostError';
  readonly code = 'LEASE_LOST';
}

/**
 * A reconciliation found more vanished documents than `producer.deletionGuard` allows and
 * deleted none: the source is more likely wrong or empty than really this changed.
 */
export class MassDeletionRefusedError extends SyncError {
  override readonly name = 'MassDeletionRefusedError';
  readonly code = 'MASS_DELETION_REFUSED';
  constructor(readonly refusals: readonly { index: string; documents: number; atLeast: number; limit: number }[]) {
    super(
      `refused to delete documents: ${refusals.map((r) => `index ${r.index}: at least ${r.atLeast} of ${r.documents} documents have no key, over the limit of ${r.limit}`).join('; ')}. ` +
        'Check that the source Redis is the right one and holds its data; to delete them anyway run reconcile --allow-mass-deletion',
    );
  }
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
