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

export function createLogger(
  level: string = process.env.LOG_LEVEL ?? 'info',
  destination?: pino.DestinationStream,
): Logger {
  const options: pino.LoggerOptions = {
    level,
    base: { app: 'redis-es-sync', pid: process.pid },
    redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  return destination ? pino(options, destination) : pino(options);
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
