import pino, { type Logger } from 'pino';

export type { Logger };

/**
 * Paths whose values never reach a log line. Connection URLs are logged through
 * `redactUrl` instead, because the password sits inside the string.
 */
export const REDACTED_PATHS = [
  'password',
  'apiKey',
  '*.password',
  '*.apiKey',
  '*.*.password',
  '*.*.apiKey',
  'authToken',
  '*.authToken',
  '*.*.authToken',
  'auth.*',
  '*.auth.*',
  'headers.authorization',
  '*.headers.authorization',
];

/** What an error becomes in a log line: an allow-list, so no client can add a field that carries a secret. */
export interface SerializedError {
  type: string;
  message: string;
  stack?: string;
  code?: string | number;
  statusCode?: number;
  /** A Redis command's name only: ioredis attaches the arguments, and `AUTH`'s is the password. */
  command?: string;
  cause?: SerializedError | string;
  errors?: (SerializedError | string)[];
}

const MAX_CAUSE_DEPTH = 4;

/**
 * pino's standard serializer copies every enumerable field of an error, and clients put
 * secrets there: ioredis the failed command with its arguments (`AUTH <password>`), the
 * Elasticsearch client the request with its Authorization header. So only named fields are
 * kept, and URLs in the text have their passwords masked.
 */
export function serializeError(err: unknown, depth = 0): SerializedError | string {
  if (!(err instanceof Error)) {
    // Not an error: only its message, never a dump that could hold whatever the thrower attached.
    const message = typeof err === 'object' && err !== null && 'message' in err ? err.message : err;
    return redactText(String(message));
  }
  const e = err as Error & {
    code?: unknown;
    statusCode?: unknown;
    command?: unknown;
    cause?: unknown;
    errors?: unknown;
  };
  // An error made with Object.create(null) (or across realms oddly) has no constructor. A class
  // that names itself otherwise goes by that name: ioredis 6 throws SimpleError and BlobError,
  // internal subclasses whose name is ReplyError, what ioredis 5 threw and what logs showed.
  const ctor = e.constructor as { name?: string } | undefined;
  const type = e.name && e.name !== 'Error' ? e.name : (ctor?.name ?? e.name);
  const out: SerializedError = { type, message: redactText(e.message) };
  if (e.stack) out.stack = redactText(e.stack);
  if (typeof e.code === 'string' || typeof e.code === 'number') out.code = e.code;
  if (typeof e.statusCode === 'number') out.statusCode = e.statusCode;
  const command = e.command as { name?: unknown } | undefined;
  if (command && typeof command.name === 'string') out.command = command.name;
  if (depth < MAX_CAUSE_DEPTH) {
    if (e.cause !== undefined) out.cause = serializeError(e.cause, depth + 1);
    if (Array.isArray(e.errors)) out.errors = e.errors.slice(0, 10).map((x: unknown) => serializeError(x, depth + 1));
  }
  return out;
}

/** `scheme://user:secret@host` anywhere in a text → `scheme://user:***@host`. */
export function redactText(text: string): string {
  return text.replace(/([a-z][a-z0-9+.-]*:\/\/[^\s/@:]*):[^\s/@]*@/gi, '$1:***@');
}

export function createLogger(
  level: string = process.env.LOG_LEVEL ?? 'info',
  destination?: pino.DestinationStream,
): Logger {
  const options: pino.LoggerOptions = {
    level,
    base: { app: 'redis-es-sync', pid: process.pid },
    redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
    serializers: { err: serializeError, error: serializeError, cause: serializeError },
    hooks: {
      // Messages are text too: a URL with its password can reach one through an error's message.
      logMethod(args, method) {
        const [first, second] = args as unknown[];
        const redacted = (args as unknown[]).map((a) => (typeof a === 'string' ? redactText(a) : a));
        // pino would take a bare error's own message as the line's message, unredacted.
        if (first instanceof Error && typeof second !== 'string') redacted.splice(1, 0, redactText(first.message));
        method.apply(this, redacted as Parameters<typeof method>);
      },
    },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  return destination ? pino(options, destination) : pino(options);
}

let fallback: Logger | undefined;

/**
 * For a connection created without a logger: its errors must still go through redaction,
 * because an emitter without an 'error' listener falls back to printing the error raw
 * (ioredis and BullMQ both do, with the failed command's arguments).
 */
export function defaultLogger(): Logger {
  fallback ??= createLogger();
  return fallback;
}

type ConsoleMethod = 'log' | 'info' | 'warn' | 'error' | 'debug' | 'trace';

/**
 * Libraries print warnings and last-resort errors with console (BullMQ's eviction-policy
 * warning, its fallback for an unhandled 'error'); in the CLI those become JSON lines through
 * the redacting logger, so every line a process prints can be parsed and none carries a secret.
 */
export function routeConsoleToLogger(logger: Logger): void {
  const log = logger.child({ component: 'console' });
  const levels: Record<ConsoleMethod, 'info' | 'warn' | 'error' | 'debug' | 'trace'> = {
    log: 'info',
    info: 'info',
    warn: 'warn',
    error: 'error',
    debug: 'debug',
    trace: 'trace',
  };
  for (const method of Object.keys(levels) as ConsoleMethod[]) {
    const level = levels[method];
    console[method] = (...args: unknown[]): void => {
      const err = args.find((a): a is Error => a instanceof Error);
      // Only strings and numbers verbatim: a dumped object could hold whatever a library attached.
      const text = args
        .filter((a) => a !== err)
        .map((a) => (typeof a === 'string' || typeof a === 'number' ? String(a) : `[${typeof a}]`))
        .join(' ');
      log[level](err ? { err } : {}, redactText(text || (err?.message ?? '')));
    };
  }
}

/** `redis://user:secret@host:6379/0` → `redis://user:***@host:6379/0`. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return '[unparseable url]';
  }
}
