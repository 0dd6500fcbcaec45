import { SyncError } from '../../../../shared/platform/errors';

/** The bytes are not a valid RDB stream or DUMP payload (truncated, corrupt, or a format we do not know). */
export class RdbFormatError extends SyncError {
  override readonly name = 'RdbFormatError';
  readonly code = 'RDB_FORMAT';
}
