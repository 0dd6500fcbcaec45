/** Raised at start-up when configuration is invalid; the message names the field. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(
    message: string,
    readonly issues: readonly ConfigIssue[] = [],
  ) {
    super(message);
  }
}

export interface ConfigIssue {
  /** Dotted path in the config, e.g. `worker.bulkMaxDocs`. */
  field: string;
  /** Where the value came from, e.g. `env REDIS_URL`, `flag --redis-url`, `file sync.yml`. */
  source?: string;
  reason: string;
}

/** Raised when Redis is not configured the way a capture mode needs. */
export class RedisSetupError extends Error {
  override readonly name = 'RedisSetupError';
}

/**
 * Elasticsearch refused a document for a reason retrying cannot fix (mapping conflict,
 * malformed document). The job fails with this reason so it can be inspected and replayed.
 */
export class DocumentRejectedError extends Error {
  override readonly name = 'DocumentRejectedError';
}

/**
 * This producer is no longer the lease holder: an enqueue or a position write was refused.
 * Whoever gets it must persist and acknowledge nothing more; the next leader resumes from
 * the last position written under a valid fence, which does not cover what was refused.
 */
export class LeaseLostError extends Error {
  override readonly name = 'LeaseLostError';
  readonly code = 'LEASE_LOST';
}

/**
 * A reconciliation found more vanished documents than `producer.deletionGuard` allows and
 * deleted none: the source is more likely wrong or empty than really this changed.
 */
export class MassDeletionRefusedError extends Error {
  override readonly name = 'MassDeletionRefusedError';
  readonly code = 'MASS_DELETION_REFUSED';
  constructor(
    readonly refusals: readonly { index: string; documents: number; atLeast: number; limit: number }[],
  ) {
    super(
      `refused to delete documents: ${refusals.map((r) => `index ${r.index}: at least ${r.atLeast} of ${r.documents} documents have no key, over the limit of ${r.limit}`).join('; ')}. ` +
        'Check that the source Redis is the right one and holds its data; to delete them anyway run reconcile --allow-mass-deletion',
    );
  }
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
