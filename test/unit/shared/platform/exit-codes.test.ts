import {
  ConfigError,
  DependenciesError,
  DependencyError,
  EXIT,
  RedisSetupError,
  UsageError,
  exitCodeOf,
} from '../../../../shared/platform/errors';
import { reasonClass } from '../../../../shared/core/failure-store';

describe('exit codes and error classes', () => {
  const dep = (code: ConstructorParameters<typeof DependencyError>[0]): DependencyError =>
    new DependencyError(code, 'source-redis', 'redis://127.0.0.1:1', 'x', '');

  it('maps each class of failure to its documented code', () => {
    expect(EXIT).toEqual({ ok: 0, failure: 1, config: 2, usage: 64 });
    expect(exitCodeOf(new UsageError('--list'))).toBe(64);
    expect(exitCodeOf(new ConfigError('bad'))).toBe(2);
    expect(exitCodeOf(new RedisSetupError('flags'))).toBe(2);
    for (const c of [
      'REDIS_AUTH',
      'REDIS_PERMISSION',
      'REDIS_PROTOCOL',
      'REDIS_TLS',
      'ES_AUTH',
      'ES_FORBIDDEN',
      'ES_PROTOCOL',
      'ES_TLS',
    ] as const)
      expect({ c, exit: exitCodeOf(dep(c)) }).toEqual({ c, exit: 2 });
    for (const c of [
      'REDIS_UNREACHABLE',
      'REDIS_TIMEOUT',
      'REDIS_ERROR',
      'ES_UNREACHABLE',
      'ES_TIMEOUT',
      'ES_UNAVAILABLE',
      'ES_ERROR',
    ] as const)
      expect({ c, exit: exitCodeOf(dep(c)) }).toEqual({ c, exit: 1 });
    expect(exitCodeOf(new DependenciesError([dep('REDIS_UNREACHABLE'), dep('ES_AUTH')]))).toBe(2);
    expect(exitCodeOf(new Error('bug'))).toBe(1);
  });

  it('names the dependency and endpoint in one line, keeping the driver error as cause', () => {
    const cause = new Error('connect ECONNREFUSED');
    const err = new DependencyError(
      'REDIS_UNREACHABLE',
      'queue-redis',
      'redis://:***@h:1',
      'connection refused',
      'check it',
      { cause },
    );
    expect(err.message).toBe('queue Redis redis://:***@h:1: connection refused; check it');
    expect(err.cause).toBe(cause);
    expect(err.code).toBe('REDIS_UNREACHABLE');
  });

  it('classes refusal reasons for the metric', () => {
    expect(reasonClass('403 cluster_block_exception: index [x] blocked')).toBe('cluster_block_exception');
    expect(
      reasonClass('400 document_parsing_exception: [1:71] failed to parse (caused by illegal_argument_exception: x)'),
    ).toBe('document_parsing_exception');
    expect(reasonClass('document is 20000 bytes, over worker.maxDocumentBytes (2000); not sent')).toBe('too_large');
    expect(reasonClass('value is not valid JSON: Unexpected token (rule has json: true)')).toBe('not_json');
    expect(reasonClass('field "age": cannot coerce "old" to integer: not a number')).toBe('coerce');
    expect(reasonClass('transform failed: boom')).toBe('transform');
    expect(reasonClass('bulk request rejected: 400 illegal_argument_exception: x')).toBe('illegal_argument_exception');
    expect(reasonClass('something else')).toBe('other');
  });
});
