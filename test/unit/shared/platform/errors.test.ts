import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SearchRequestError } from '../../../../features/search/query';
import { ReplicationStreamError } from '../../../../producers/capture/replication/command-stream';
import { RdbFormatError } from '../../../../producers/capture/replication/rdb';
import {
  ConfigError,
  DependenciesError,
  DependencyError,
  DocumentRejectedError,
  LeaseLostError,
  MassDeletionRefusedError,
  RedisSetupError,
  SyncError,
  UsageError,
} from '../../../../shared/platform/errors';
import { ShutdownError } from '../../../../workers/bulk-indexer';
import { RebuildError } from '../../../../features/maintenance/rebuild';

describe('one error model', () => {
  const cause = new Error('the driver said no');
  const dependency = new DependencyError(
    'REDIS_AUTH',
    'queue-redis',
    'redis://h:1',
    'authentication failed',
    'check it',
    { cause },
  );
  const all: [SyncError, string][] = [
    [new ConfigError('bad', [], { cause }), 'CONFIG_INVALID'],
    [new UsageError('bad flag', { cause }), 'USAGE'],
    [new RedisSetupError('flags missing', { cause }), 'REDIS_SETUP'],
    [new DocumentRejectedError('mapping conflict', { cause }), 'DOCUMENT_REJECTED'],
    [dependency, 'REDIS_AUTH'],
    [new DependenciesError([dependency]), 'DEPENDENCIES'],
    [new LeaseLostError('fenced out', { cause }), 'LEASE_LOST'],
    [new MassDeletionRefusedError([{ index: 'i', documents: 10, atLeast: 9, limit: 2 }]), 'MASS_DELETION_REFUSED'],
    [new SearchRequestError(400, 'bad query'), 'SEARCH_REQUEST'],
    [new RdbFormatError('truncated', { cause }), 'RDB_FORMAT'],
    [new ReplicationStreamError('not RESP', { cause }), 'REPLICATION_STREAM'],
    [new ShutdownError('shutting down', { cause }), 'SHUTDOWN'],
    [new RebuildError('REBUILD_REFUSED', 'no such index'), 'REBUILD_REFUSED'],
    [new RebuildError('REBUILD_VERIFY_FAILED', 'extra ghost'), 'REBUILD_VERIFY_FAILED'],
  ];

  it.each(all.map(([err, code]) => [err.name, err, code] as const))(
    '%s is a SyncError with the stable code it documents',
    (_name, err, code) => {
      expect(err).toBeInstanceOf(SyncError);
      expect(err).toBeInstanceOf(Error);
      expect(err.code).toBe(code);
    },
  );

  it('docs/operations.md lists every code', () => {
    const doc = readFileSync(join(__dirname, '../../../../docs/operations.md'), 'utf8');
    const table = doc.split('### Error codes')[1]?.split('\n### ')[0] ?? '';
    for (const [, code] of all) expect(table).toContain(`\`${code}\``);
  });

  it('chains the underlying error as `cause`', () => {
    for (const [err] of all) {
      // These describe what they found themselves: there is no underlying error.
      if (err instanceof MassDeletionRefusedError || err instanceof SearchRequestError || err instanceof RebuildError)
        continue;
      expect(err.cause).toBe(err instanceof DependenciesError ? dependency : cause);
    }
  });
});
