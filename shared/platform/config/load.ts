import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { z } from 'zod';
import { ConfigError, type ConfigIssue, errorMessage } from '../errors';
import type { AppConfig } from './schema';

/** Values given on the command line; they win over the environment and the file. */
export interface ConfigFlags {
  config?: string;
  redisUrl?: string;
  queueRedisUrl?: string;
  elasticsearchUrl?: string;
  logLevel?: string;
  httpPort?: string;
  httpHost?: string;
}

export interface LoadedConfig<C extends AppConfig = AppConfig> {
  config: C;
  /** Directory of the config file, against which rule paths (transform modules) resolve. */
  baseDir: string;
  /** Where the file came from, for the start-up log line. */
  file?: string;
  /** Where each value given came from (`elasticsearch.apiKey` → `env ELASTICSEARCH_API_KEY_FILE`), for error messages. */
  sources?: ReadonlyMap<string, string>;
}

type Path = readonly string[];

interface Overlay {
  path: Path;
  env: string;
  flag?: keyof ConfigFlags;
  flagName?: string;
}

const OVERLAYS: readonly Overlay[] = [
  { path: ['redis', 'url'], env: 'REDIS_URL', flag: 'redisUrl', flagName: '--redis-url' },
  { path: ['queue', 'url'], env: 'QUEUE_REDIS_URL', flag: 'queueRedisUrl', flagName: '--queue-redis-url' },
  {
    path: ['elasticsearch', 'url'],
    env: 'ELASTICSEARCH_URL',
    flag: 'elasticsearchUrl',
    flagName: '--elasticsearch-url',
  },
  { path: ['elasticsearch', 'apiKey'], env: 'ELASTICSEARCH_API_KEY' },
  { path: ['elasticsearch', 'username'], env: 'ELASTICSEARCH_USERNAME' },
  { path: ['elasticsearch', 'password'], env: 'ELASTICSEARCH_PASSWORD' },
  { path: ['logLevel'], env: 'LOG_LEVEL', flag: 'logLevel', flagName: '--log-level' },
  { path: ['http', 'port'], env: 'HTTP_PORT', flag: 'httpPort', flagName: '--http-port' },
  { path: ['http', 'host'], env: 'HTTP_HOST', flag: 'httpHost', flagName: '--http-host' },
  { path: ['http', 'authToken'], env: 'HTTP_AUTH_TOKEN' },
  { path: ['http', 'basicAuth', 'username'], env: 'HTTP_BASIC_USERNAME' },
  { path: ['http', 'basicAuth', 'password'], env: 'HTTP_BASIC_PASSWORD' },
  { path: ['http', 'search', 'token'], env: 'HTTP_SEARCH_TOKEN' },
  { path: ['http', 'viewer', 'token'], env: 'HTTP_VIEWER_TOKEN' },
  { path: ['http', 'viewer', 'basic', 'username'], env: 'HTTP_VIEWER_USERNAME' },
  { path: ['http', 'viewer', 'basic', 'password'], env: 'HTTP_VIEWER_PASSWORD' },
  { path: ['http', 'operator', 'token'], env: 'HTTP_OPERATOR_TOKEN' },
  { path: ['http', 'operator', 'basic', 'username'], env: 'HTTP_OPERATOR_USERNAME' },
  { path: ['http', 'operator', 'basic', 'password'], env: 'HTTP_OPERATOR_PASSWORD' },
  { path: ['http', 'allowDestructiveQueueActions'], env: 'HTTP_ALLOW_DESTRUCTIVE_QUEUE_ACTIONS' },
];

/**
 * A check over the parsed configuration that a higher layer adds (a capture mode's topology
 * rules); its issues are reported exactly like the schema's own.
 */
export type ConfigCheck<C extends AppConfig = AppConfig> = (
  config: C,
) => { path: (string | number)[]; message: string }[];

/**
 * Builds the one validated configuration the process runs with: file (YAML or JSON),
 * then environment (`VAR`, or `VAR_FILE` naming a file that holds the secret), then flags.
 * Throws ConfigError naming every bad field and where its value came from.
 *
 * The schema comes from above: the full one (`defineConfigSchema` with the capture modes'
 * parts) is composed by the capture registry, which this layer must not know.
 */
export function loadConfig<C extends AppConfig>(
  schema: z.ZodType<C>,
  flags: ConfigFlags = {},
  env: NodeJS.ProcessEnv = process.env,
  checks: readonly ConfigCheck<C>[] = [],
): LoadedConfig<C> {
  const file = flags.config ?? env.CONFIG;
  const raw: Record<string, unknown> = file ? readConfigFile(file) : {};
  const sources = new Map<string, string>();
  for (const key of Object.keys(raw)) sources.set(key, `file ${file}`);

  for (const overlay of OVERLAYS) {
    const flagValue = overlay.flag ? flags[overlay.flag] : undefined;
    const fromEnv = envValue(env, overlay.env);
    if (flagValue !== undefined) {
      setPath(raw, overlay.path, flagValue);
      sources.set(overlay.path.join('.'), `flag ${overlay.flagName}`);
    } else if (fromEnv !== undefined) {
      setPath(raw, overlay.path, fromEnv.value);
      sources.set(overlay.path.join('.'), `env ${fromEnv.name}`);
    }
  }
  // One Redis for data and queue is the simplest set-up; the producer ignores the queue's keys.
  const redis = raw.redis as Record<string, unknown> | undefined;
  const queue = (raw.queue ?? {}) as Record<string, unknown>;
  const endpoints = ['url', 'cluster', 'sentinel'] as const;
  const sourceEndpoint = endpoints.find((k) => redis?.[k] !== undefined);
  if (redis && sourceEndpoint && endpoints.every((k) => queue[k] === undefined)) {
    raw.queue = {
      ...queue,
      [sourceEndpoint]: redis[sourceEndpoint],
      ...(queue.tls === undefined && redis.tls !== undefined ? { tls: redis.tls } : {}),
    };
    const from = sources.get(`redis.${sourceEndpoint}`) ?? sources.get('redis') ?? `redis.${sourceEndpoint}`;
    sources.set(`queue.${sourceEndpoint}`, `${from} (QUEUE_REDIS_URL unset)`);
  }
  // A missing section would be reported as `redis: is required`; as `{}` its missing URL is named with the variable that sets it.
  for (const section of ['redis', 'queue', 'elasticsearch']) raw[section] ??= {};

  // reportInput: an issue then tells a missing value (input undefined) from a wrong one; inputs are never printed.
  const checked =
    checks.length === 0
      ? schema
      : schema.superRefine((c, ctx) => {
          for (const check of checks) for (const issue of check(c)) ctx.addIssue({ code: 'custom', ...issue });
        });
  const parsed = checked.safeParse(raw, { reportInput: true });
  if (!parsed.success) throw toConfigError(parsed.error, sources);
  return { config: parsed.data, baseDir: file ? dirname(resolve(file)) : process.cwd(), file, sources };
}

/**
 * The log level the configuration asks for (flag, then env, then file), read without validating
 * the rest: a failed command decides from it whether to print the stack, even when the
 * configuration it failed on was never fully loaded. Undefined when none is set or readable.
 */
export function configuredLogLevel(flags: ConfigFlags = {}, env: NodeJS.ProcessEnv = process.env): string | undefined {
  try {
    if (flags.logLevel !== undefined) return flags.logLevel;
    const fromEnv = envValue(env, 'LOG_LEVEL');
    if (fromEnv !== undefined) return fromEnv.value;
    const file = flags.config ?? env.CONFIG;
    const level = file ? readConfigFile(file).logLevel : undefined;
    return typeof level === 'string' ? level : undefined;
  } catch {
    // An unreadable file or secret file already failed the command with its own message.
    return undefined;
  }
}

function readConfigFile(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`config file ${file} cannot be read: ${errorMessage(err)}`, [
      { field: 'CONFIG', reason: errorMessage(err) },
    ]);
  }
  let data: unknown;
  try {
    data = parseYaml(text);
  } catch (err) {
    throw new ConfigError(`config file ${file} is not valid YAML/JSON: ${errorMessage(err)}`, [
      { field: 'CONFIG', reason: errorMessage(err) },
    ]);
  }
  if (data === null || data === undefined) return {};
  if (typeof data !== 'object' || Array.isArray(data)) {
    throw new ConfigError(`config file ${file} must hold an object at the top level`, [
      { field: 'CONFIG', reason: 'not an object' },
    ]);
  }
  return data as Record<string, unknown>;
}

function envValue(env: NodeJS.ProcessEnv, name: string): { name: string; value: string } | undefined {
  const direct = env[name];
  if (direct !== undefined && direct !== '') return { name, value: direct };
  const fileVar = `${name}_FILE`;
  const path = env[fileVar];
  if (path === undefined || path === '') return undefined;
  try {
    return { name: fileVar, value: readFileSync(path, 'utf8').trim() };
  } catch (err) {
    throw new ConfigError(`${fileVar}: cannot read ${path}: ${errorMessage(err)}`, [
      { field: fileVar, reason: errorMessage(err) },
    ]);
  }
}

function setPath(target: Record<string, unknown>, path: Path, value: unknown): void {
  const leaf = path.at(-1);
  if (leaf === undefined) throw new Error('setPath: empty path');
  let node = target;
  for (const part of path.slice(0, -1)) {
    const next = node[part];
    if (typeof next !== 'object' || next === null || Array.isArray(next)) node[part] = {};
    node = node[part] as Record<string, unknown>;
  }
  node[leaf] = value;
}

function toConfigError(error: z.ZodError, sources: Map<string, string>): ConfigError {
  const issues: ConfigIssue[] = error.issues.map((issue) => {
    const field = formatPath(issue.path);
    if (issue.code === 'invalid_type' && issue.input === undefined) {
      const overlay = OVERLAYS.find((o) => o.path.join('.') === field);
      const how = overlay ? `: set ${overlay.env}${overlay.flagName ? ` or ${overlay.flagName}` : ''}` : '';
      return { field, reason: `is required${how}` };
    }
    return { field, reason: issue.message, source: sourceOf(field, sources) };
  });
  const lines = issues.map((i) => `  - ${i.field}${i.source ? ` (from ${i.source})` : ''}: ${i.reason}`);
  return new ConfigError(`invalid configuration:\n${lines.join('\n')}`, issues);
}

function formatPath(path: readonly PropertyKey[]): string {
  if (path.length === 0) return '(root)';
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : `${i === 0 ? '' : '.'}${String(p)}`)).join('');
}

function sourceOf(field: string, sources: Map<string, string>): string | undefined {
  for (let f = field; f.length > 0; f = f.replace(/(\.[^.[\]]+|\[\d+\])$/, '')) {
    const s = sources.get(f);
    if (s) return s;
    if (!/[.[]/.test(f)) break;
  }
  return undefined;
}

/** Every environment variable the loader reads (each also as `<NAME>_FILE`), for deployment checks. */
export function configEnvVars(): string[] {
  return ['CONFIG', ...OVERLAYS.map((o) => o.env)];
}
