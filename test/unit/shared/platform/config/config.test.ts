import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { configuredLogLevel, loadConfig, type ConfigFlags } from '../../../../../shared/platform/config/load';
import { ConfigSchema } from '../../../../../producers/capture/registry';
import { ConfigError } from '../../../../../shared/platform/errors';

const BASE_ENV = { REDIS_URL: 'redis://data.example:6379/0', ELASTICSEARCH_URL: 'http://es.example:9200' };

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'res-config-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, content: string): string {
  const path = join(dir, name);
  writeFileSync(path, content);
  return path;
}

function configError(flags: ConfigFlags, env: NodeJS.ProcessEnv): ConfigError {
  try {
    loadConfig(ConfigSchema, flags, env);
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error('expected loadConfig to throw a ConfigError');
}

describe('environment', () => {
  it('reads the URLs and applies defaults', () => {
    const { config, file: from, baseDir } = loadConfig(ConfigSchema, {}, BASE_ENV);
    expect(from).toBeUndefined();
    expect(baseDir).toBe(process.cwd());
    expect(config.redis).toEqual({ url: 'redis://data.example:6379/0', databases: [0], patterns: ['*'] });
    expect(config.queue).toEqual({
      url: 'redis://data.example:6379/0',
      prefix: 'redis-es-sync',
      name: 'changes',
      partitions: 1,
      attempts: 10,
      keepCompleted: 1000,
      keepFailed: 100000,
    });
    expect(config.elasticsearch).toEqual({ url: 'http://es.example:9200', requestTimeoutMs: 30000 });
    expect(config.logLevel).toBe('info');
    expect(config.worker).toEqual({
      concurrency: 100,
      bulkMaxDocs: 1000,
      bulkMaxBytes: 5 * 1024 * 1024,
      maxDocumentBytes: 10 * 1024 * 1024,
      flushMs: 10,
      maxInflightBulks: 2,
      retryBaseMs: 200,
      retryMaxMs: 15000,
      lockDurationMs: 30000,
      stalledIntervalMs: 30000,
      formerPartitionsPollMs: 5000,
    });
    expect(config.mapping).toEqual({ defaultIndex: 'redis', unmatched: 'index', rules: [], indices: {} });
    expect(config.producer).toMatchObject({
      configureNotifications: false,
      enqueueBatch: 500,
      snapshotBatchKeys: 1000,
    });
  });

  it('QUEUE_REDIS_URL sets a separate queue Redis', () => {
    const { config } = loadConfig(ConfigSchema, {}, { ...BASE_ENV, QUEUE_REDIS_URL: 'redis://queue.example:6380/2' });
    expect(config.redis.url).toBe('redis://data.example:6379/0');
    expect(config.queue.url).toBe('redis://queue.example:6380/2');
  });

  it('an empty variable counts as unset', () => {
    const { config } = loadConfig(ConfigSchema, {}, { ...BASE_ENV, QUEUE_REDIS_URL: '' });
    expect(config.queue.url).toBe(BASE_ENV.REDIS_URL);
  });

  it('ELASTICSEARCH_API_KEY, USERNAME/PASSWORD and LOG_LEVEL', () => {
    expect(
      loadConfig(ConfigSchema, {}, { ...BASE_ENV, ELASTICSEARCH_API_KEY: 'k3y' }).config.elasticsearch.apiKey,
    ).toBe('k3y');
    const basic = loadConfig(
      ConfigSchema,
      {},
      { ...BASE_ENV, ELASTICSEARCH_USERNAME: 'elastic', ELASTICSEARCH_PASSWORD: 's3cret' },
    ).config;
    expect(basic.elasticsearch).toMatchObject({ username: 'elastic', password: 's3cret' });
    expect(loadConfig(ConfigSchema, {}, { ...BASE_ENV, LOG_LEVEL: 'debug' }).config.logLevel).toBe('debug');
  });

  it('VAR_FILE reads a secret from a file (trimmed); VAR itself wins', () => {
    const secret = file('es-password', 's3cret-from-file\n');
    const apiKey = file('api-key', '  key-from-file  \n');
    const redisUrl = file('redis-url', 'redis://secret-host:6379\n');
    const { config } = loadConfig(
      ConfigSchema,
      {},
      {
        ELASTICSEARCH_URL: BASE_ENV.ELASTICSEARCH_URL,
        REDIS_URL_FILE: redisUrl,
        ELASTICSEARCH_USERNAME: 'elastic',
        ELASTICSEARCH_PASSWORD_FILE: secret,
        ELASTICSEARCH_API_KEY_FILE: apiKey,
      },
    );
    expect(config.redis.url).toBe('redis://secret-host:6379');
    expect(config.elasticsearch.password).toBe('s3cret-from-file');
    expect(config.elasticsearch.apiKey).toBe('key-from-file');

    const direct = loadConfig(
      ConfigSchema,
      {},
      { ...BASE_ENV, ELASTICSEARCH_API_KEY: 'direct', ELASTICSEARCH_API_KEY_FILE: apiKey },
    ).config;
    expect(direct.elasticsearch.apiKey).toBe('direct');
  });

  it('an unreadable VAR_FILE is a ConfigError naming the variable', () => {
    const err = configError({}, { ...BASE_ENV, ELASTICSEARCH_PASSWORD_FILE: join(dir, 'does-not-exist') });
    expect(err.message).toContain('ELASTICSEARCH_PASSWORD_FILE');
    expect(err.message).toContain('does-not-exist');
  });
});

describe('config files', () => {
  it('reads YAML from CONFIG; env overrides the file; baseDir is the file directory', () => {
    const path = file(
      'sync.yml',
      [
        'logLevel: warn',
        'redis:',
        '  url: redis://from-file:6379',
        '  databases: [0, 1]',
        'elasticsearch:',
        '  url: http://es-from-file:9200',
        'worker:',
        '  bulkMaxDocs: 250',
        'mapping:',
        '  defaultIndex: kv',
        '  rules:',
        '    - match: "user:*"',
        '      index: users',
        '      id: "{db}:{1}"',
        '',
      ].join('\n'),
    );
    const loaded = loadConfig(ConfigSchema, {}, { CONFIG: path, ELASTICSEARCH_URL: 'http://es-from-env:9200' });
    expect(loaded.file).toBe(path);
    expect(loaded.baseDir).toBe(dir);
    const { config } = loaded;
    expect(config.logLevel).toBe('warn');
    expect(config.redis.url).toBe('redis://from-file:6379');
    expect(config.redis.databases).toEqual([0, 1]);
    expect(config.queue.url).toBe('redis://from-file:6379');
    expect(config.elasticsearch.url).toBe('http://es-from-env:9200');
    expect(config.worker.bulkMaxDocs).toBe(250);
    expect(config.worker.bulkMaxBytes).toBe(5 * 1024 * 1024);
    expect(config.mapping.defaultIndex).toBe('kv');
    expect(config.mapping.rules).toEqual([
      { match: 'user:*', index: 'users', id: '{db}:{1}', skip: false, json: 'auto' },
    ]);
  });

  it('reads JSON', () => {
    const path = file(
      'sync.json',
      JSON.stringify({
        redis: { url: 'redis://json:6379' },
        elasticsearch: { url: 'https://es-json:9200' },
        producer: { enqueueBatch: 7 },
      }),
    );
    const { config } = loadConfig(ConfigSchema, { config: path }, {});
    expect(config.redis.url).toBe('redis://json:6379');
    expect(config.elasticsearch.url).toBe('https://es-json:9200');
    expect(config.producer.enqueueBatch).toBe(7);
  });

  it('an empty file is an empty object', () => {
    const path = file('empty.yml', '');
    expect(loadConfig(ConfigSchema, { config: path }, BASE_ENV).config.redis.url).toBe(BASE_ENV.REDIS_URL);
  });

  it('unreadable, invalid and non-object files are ConfigErrors naming the file', () => {
    const missing = join(dir, 'missing.yml');
    expect(configError({ config: missing }, BASE_ENV).message).toContain(missing);
    const broken = file('broken.yml', 'redis: [unclosed\n  url: : :');
    expect(configError({ config: broken }, BASE_ENV).message).toContain(broken);
    const list = file('list.yml', '- a\n- b\n');
    expect(configError({ config: list }, BASE_ENV).message).toMatch(/must hold an object/);
  });
});

describe('the log level a failed command honours (stack traces at debug)', () => {
  it('takes the flag, then LOG_LEVEL, then the config file, as loading does', () => {
    const path = file('debug.yml', 'logLevel: debug\nelasticsearch:\n  url: http://es.example:9200\n');
    expect(configuredLogLevel({ config: path }, {})).toBe('debug');
    expect(configuredLogLevel({}, { CONFIG: path })).toBe('debug');
    expect(configuredLogLevel({ config: path }, { LOG_LEVEL: 'warn' })).toBe('warn');
    expect(configuredLogLevel({ config: path, logLevel: 'trace' }, { LOG_LEVEL: 'warn' })).toBe('trace');
  });

  it('is undefined when nothing sets it or the file cannot be read, without throwing', () => {
    expect(configuredLogLevel({}, {})).toBeUndefined();
    expect(configuredLogLevel({ config: join(dir, 'missing.yml') }, {})).toBeUndefined();
    expect(configuredLogLevel({ config: file('broken.yml', 'a: [') }, {})).toBeUndefined();
    expect(configuredLogLevel({}, { LOG_LEVEL_FILE: join(dir, 'missing-secret') })).toBeUndefined();
  });
});

describe('flags', () => {
  it('win over env and file', () => {
    const path = file('flags.yml', 'redis:\n  url: redis://from-file:6379\nlogLevel: warn\n');
    const { config } = loadConfig(
      ConfigSchema,
      {
        config: path,
        redisUrl: 'redis://from-flag:6379',
        queueRedisUrl: 'redis://queue-flag:6379',
        elasticsearchUrl: 'http://es-flag:9200',
        logLevel: 'error',
      },
      { ...BASE_ENV, QUEUE_REDIS_URL: 'redis://queue-env:6379', LOG_LEVEL: 'debug' },
    );
    expect(config.redis.url).toBe('redis://from-flag:6379');
    expect(config.queue.url).toBe('redis://queue-flag:6379');
    expect(config.elasticsearch.url).toBe('http://es-flag:9200');
    expect(config.logLevel).toBe('error');
  });

  it('--config wins over CONFIG', () => {
    const a = file('a.yml', 'worker:\n  flushMs: 1\n');
    const b = file('b.yml', 'worker:\n  flushMs: 2\n');
    const loaded = loadConfig(ConfigSchema, { config: b }, { ...BASE_ENV, CONFIG: a });
    expect(loaded.file).toBe(b);
    expect(loaded.config.worker.flushMs).toBe(2);
  });
});

describe('errors name the field and where its value came from', () => {
  it('missing REDIS_URL', () => {
    const err = configError({}, { ELASTICSEARCH_URL: BASE_ENV.ELASTICSEARCH_URL });
    expect(err.message).toContain('redis.url');
    expect(err.message).toContain('REDIS_URL');
    expect(err.issues.map((i) => i.field)).toContain('redis.url');
  });

  it('missing ELASTICSEARCH_URL', () => {
    const err = configError({}, { REDIS_URL: BASE_ENV.REDIS_URL });
    expect(err.message).toContain('elasticsearch.url');
    expect(err.message).toContain('ELASTICSEARCH_URL');
  });

  it('a bad URL from env and from a flag', () => {
    const env = configError({}, { ...BASE_ENV, REDIS_URL: 'http://not-redis:6379' });
    expect(env.message).toMatch(/redis\.url \(from env REDIS_URL\): must be a redis:\/\//);
    const flag = configError({ elasticsearchUrl: 'es:9200' }, BASE_ENV);
    expect(flag.message).toMatch(/elasticsearch\.url \(from flag --elasticsearch-url\)/);
  });

  it('worker.bulkMaxDocs: -1 in a file', () => {
    const path = file('negative.yml', 'worker:\n  bulkMaxDocs: -1\n');
    const err = configError({ config: path }, BASE_ENV);
    expect(err.message).toContain('worker.bulkMaxDocs');
    expect(err.message).toContain(`file ${path}`);
    expect(err.issues).toEqual([expect.objectContaining({ field: 'worker.bulkMaxDocs', source: `file ${path}` })]);
  });

  it('unknown keys are rejected', () => {
    const path = file('typo.yml', 'worker:\n  bulkMaxDoc: 5\nredsi:\n  url: x\n');
    const err = configError({ config: path }, BASE_ENV);
    expect(err.message).toContain('bulkMaxDoc');
    expect(err.message).toContain('redsi');
    expect(err.issues.map((i) => i.field).sort()).toEqual(['(root)', 'worker']);
  });

  it('an invalid index name', () => {
    const path = file(
      'index.yml',
      'mapping:\n  defaultIndex: My-Index\n  rules:\n    - match: "a:*"\n      index: "_bad"\n',
    );
    const err = configError({ config: path }, BASE_ENV);
    expect(err.message).toContain('mapping.defaultIndex');
    expect(err.message).toContain('mapping.rules[0].index');
    expect(err.message).toContain('lowercase');
  });

  it('a rule with both match and regex, or neither', () => {
    const path = file('rule.yml', 'mapping:\n  rules:\n    - match: "a:*"\n      regex: "^a"\n    - index: x\n');
    const err = configError({ config: path }, BASE_ENV);
    expect(err.message).toContain('mapping.rules[0]');
    expect(err.message).toContain('mapping.rules[1]');
    expect(err.message).toContain('exactly one of `match` (glob) or `regex`');
  });

  it('username without password', () => {
    const err = configError({}, { ...BASE_ENV, ELASTICSEARCH_USERNAME: 'elastic' });
    expect(err.message).toContain('elasticsearch');
    expect(err.message).toContain('username and password go together');
  });

  it('an invalid log level from env', () => {
    const err = configError({}, { ...BASE_ENV, LOG_LEVEL: 'loud' });
    expect(err.message).toMatch(/logLevel \(from env LOG_LEVEL\)/);
  });
});
