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

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
