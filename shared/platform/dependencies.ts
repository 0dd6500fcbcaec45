import {
  DependenciesError,
  DependencyError,
  DEPENDENCY_LABELS,
  errorMessage,
  type DependencyErrorCode,
  type DependencyName,
} from './errors';
import type { Logger } from './logger';
import { dependencyUp } from './metrics';
import type { RedisClient } from './redis';
import { sleep } from './sleep';

/** One dependency to check before a command uses it. */
export interface DependencyProbe {
  name: DependencyName;
  /** Masked endpoint, as messages show it. */
  endpoint: string;
  /** Resolves once the dependency answered; rejects with a DependencyError. */
  check(timeoutMs: number): Promise<void>;
}

/** Where a setting came from (`env REDIS_URL`), for the hint of a message. */
export type SourceOf = (field: string) => string | undefined;

/**
 * A Redis answers INFO within `timeoutMs`, or the first error its client reports (refused,
 * wrong password, not Redis at all) fails the check at once: ioredis would otherwise retry
 * it forever and queue the command behind the retries.
 */
export function redisProbe(
  name: DependencyName,
  client: () => RedisClient,
  endpoint: string,
  configField: string,
  sourceOf: SourceOf,
): DependencyProbe {
  return {
    name,
    endpoint,
    check(timeoutMs) {
      const redis = client();
      return new Promise<void>((resolve, reject) => {
        let settled = false;
        let held: ReturnType<typeof setTimeout> | undefined;
        const done = (err?: DependencyError): void => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          clearTimeout(held);
          redis.off('error', onError);
          if (err) reject(err);
          else resolve();
        };
        // A write to a socket the server just closed (EPIPE, ECONNRESET) says less than the reply
        // that made it close, which may still be on its way: ioredis 6 writes its whole handshake
        // at once, so against an HTTP port the EPIPE of a later command can beat the protocol error
        // the answer causes, and the decoder never sees the answer; a reconnect soon after (100 ms,
        // then doubling) does. Such an error settles the check only if nothing better follows.
        const onError = (err: Error): void => {
          const failure = redisError(name, endpoint, err, configField, sourceOf);
          if (!isTransportError(err)) {
            done(failure);
            return;
          }
          held ??= setTimeout(() => done(failure), TRANSPORT_ERROR_GRACE_MS);
        };
        const timer = setTimeout(() => {
          // 'connect': the TCP connection is up but the ready check got no answer.
          const connected = redis.status === 'connect' || redis.status === 'ready';
          const detail = connected
            ? `accepted the connection but did not answer within ${timeoutMs} ms (tried: INFO)`
            : `no connection within ${timeoutMs} ms (tried: connect, INFO)`;
          done(
            new DependencyError(
              'REDIS_TIMEOUT',
              name,
              endpoint,
              detail,
              `check that a Redis server listens there and is not overloaded (${where(configField, sourceOf)})`,
            ),
          );
        }, timeoutMs);
        redis.on('error', onError);
        // INFO, not PING: every role's ACL in docs/security.md grants it (ioredis's ready check sends it too).
        redis.info('server').then(
          () => done(),
          (err: unknown) => onError(err instanceof Error ? err : new Error(String(err))),
        );
      });
    },
  };
}

/** How long a transport error waits for the error that explains it (see redisProbe). */
const TRANSPORT_ERROR_GRACE_MS = 1000;

function isTransportError(err: Error): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return code === 'EPIPE' || code === 'ECONNRESET';
}

/** The config field, and where its value came from (env, flag, file) when known. */
export function where(field: string, sourceOf: SourceOf): string {
  const from = sourceOf(field);
  return from ? `${field} from ${from}` : field;
}

/** What an ioredis error means for an operator. */
export function redisError(
  name: DependencyName,
  endpoint: string,
  err: Error,
  configField: string,
  sourceOf: SourceOf,
): DependencyError {
  const msg = err.message;
  const code = (err as NodeJS.ErrnoException).code ?? '';
  const at = where(configField, sourceOf);
  const make = (c: DependencyErrorCode, detail: string, hint: string): DependencyError =>
    new DependencyError(c, name, endpoint, detail, hint, { cause: err });
  if (/^(NOAUTH|WRONGPASS)/.test(msg) || /invalid password|invalid username-password/i.test(msg)) {
    return make(
      'REDIS_AUTH',
      `authentication failed: ${firstLine(msg)}`,
      `check the user and password in the URL (${at})`,
    );
  }
  if (msg.startsWith('NOPERM'))
    return make(
      'REDIS_PERMISSION',
      `permission denied: ${firstLine(msg)}`,
      'grant the user the commands docs/security.md "Redis ACL" lists for this role',
    );
  // ioredis 5's parser: "Protocol error, got …"; ioredis 6's decoder: "Unknown RESP type …".
  if (/Protocol error|Unknown RESP type/i.test(msg)) {
    return make(
      'REDIS_PROTOCOL',
      'answered, but not in the Redis protocol (is this the port of another service, e.g. HTTP?)',
      `check the host and port (${at})`,
    );
  }
  if (code === 'ECONNREFUSED' || msg.includes('ECONNREFUSED'))
    return make('REDIS_UNREACHABLE', 'connection refused (ECONNREFUSED)', `check that Redis runs there (${at})`);
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN' || /ENOTFOUND|EAI_AGAIN/.test(msg))
    return make('REDIS_UNREACHABLE', `host not found (${code || 'ENOTFOUND'})`, `check the host name (${at})`);
  if (code === 'ETIMEDOUT' || msg.includes('ETIMEDOUT'))
    return make(
      'REDIS_UNREACHABLE',
      'connection timed out (ETIMEDOUT)',
      `check the address and the network path (${at})`,
    );
  if (/certificate|SSL|TLS|wrong version number/i.test(msg) || /^ERR_SSL|CERT|DEPTH_ZERO/.test(code)) {
    return make(
      'REDIS_TLS',
      `TLS failed: ${firstLine(msg)}`,
      'check rediss:// against the server and redis.tls / queue.tls (CA, certificate)',
    );
  }
  if (code === 'ECONNRESET' || /ECONNRESET|Connection is closed/.test(msg))
    return make(
      'REDIS_UNREACHABLE',
      `connection lost (${firstLine(msg)})`,
      `check that Redis runs there and accepts this client (${at})`,
    );
  return make('REDIS_ERROR', firstLine(msg), `check the server (${at})`);
}

/** The first line, without a closing period: the message goes on after it. */
export function firstLine(s: string): string {
  return (s.split('\n', 1)[0] ?? '').replace(/\.$/, '');
}

/**
 * One-shot commands: checks every probe at once, each bounded by `timeoutMs`, and throws one
 * error naming every dependency that failed.
 */
export async function checkDependencies(probes: readonly DependencyProbe[], timeoutMs: number): Promise<void> {
  const results = await Promise.all(
    probes.map(async (p) => {
      try {
        await p.check(timeoutMs);
        dependencyUp.set({ dependency: p.name }, 1);
        return undefined;
      } catch (err) {
        dependencyUp.set({ dependency: p.name }, 0);
        if (err instanceof DependencyError) return err;
        return new DependencyError(
          p.name === 'elasticsearch' ? 'ES_ERROR' : 'REDIS_ERROR',
          p.name,
          p.endpoint,
          errorMessage(err),
          '',
          { cause: err },
        );
      }
    }),
  );
  const failed = results.filter((r): r is DependencyError => r !== undefined);
  const [only, ...more] = failed;
  if (only && more.length === 0) throw only;
  if (only) throw new DependenciesError(failed);
}

export interface WaitOptions {
  timeoutMs: number;
  logEveryMs: number;
  logger: Logger;
  /** Stops the wait (shutdown while waiting); the wait then rejects with the last error. */
  signal?: AbortSignal;
  /** Pause between two rounds of checks. */
  retryMs?: number;
}

/**
 * Long-running roles: waits until every probe passes. What it waits for is logged at once and
 * then every `logEveryMs`, and shown by the `dependency_up` gauge; a permanent failure (wrong
 * credentials, not Redis, TLS) stops the wait, since no amount of waiting fixes it.
 */
export async function waitForDependencies(probes: readonly DependencyProbe[], opts: WaitOptions): Promise<void> {
  let lastLog = 0;
  let waited = false;
  for (;;) {
    try {
      await checkDependencies(probes, opts.timeoutMs);
      if (waited) opts.logger.info({ dependencies: probes.map((p) => p.name) }, 'every dependency answers: starting');
      return;
    } catch (err) {
      const list = err instanceof DependenciesError ? err.errors : [err as DependencyError];
      if (list.some((e) => e.permanent) || opts.signal?.aborted) throw err;
      if (Date.now() - lastLog >= opts.logEveryMs) {
        for (const e of list)
          opts.logger.warn(
            { dependency: e.dependency, endpoint: e.endpoint, code: e.code },
            `waiting for ${DEPENDENCY_LABELS[e.dependency]}: ${e.message}`,
          );
        lastLog = Date.now();
      }
      waited = true;
      await sleep(opts.retryMs ?? 1000, opts.signal);
      if (opts.signal?.aborted) throw err;
    }
  }
}
