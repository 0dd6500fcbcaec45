/** The bytes are not a valid RDB stream or DUMP payload (truncated, corrupt, or a format we do not know). */
export class RdbFormatError extends Error {
  override readonly name = 'RdbFormatError';
}
