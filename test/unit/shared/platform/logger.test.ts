import { Writable } from 'node:stream';
import {
  createLogger,
  redactText,
  redactUrl,
  routeConsoleToLogger,
  serializeError,
} from '../../../../shared/platform/logger';

function capture(): { stream: Writable; lines: () => Record<string, unknown>[]; text: () => string } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer | string, _enc, cb) {
      chunks.push(chunk.toString());
      cb();
    },
  });
  const text = (): string => chunks.join('');
  const lines = (): Record<string, unknown>[] =>
    text()
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  return { stream, lines, text };
}

describe('createLogger redaction', () => {
  it('redacts passwords, API keys and auth fields at every supported depth', () => {
    const out = capture();
    const logger = createLogger('info', out.stream);
    logger.info(
      {
        password: 'top-secret-1',
        apiKey: 'top-secret-2',
        elasticsearch: { url: 'http://es:9200', password: 'top-secret-3', apiKey: 'top-secret-4' },
        config: { elasticsearch: { username: 'elastic', password: 'top-secret-5' } },
        auth: { username: 'elastic', password: 'top-secret-6' },
        client: { auth: { apiKey: 'top-secret-7' } },
        headers: { authorization: 'Basic top-secret-8', accept: 'json' },
        request: { headers: { authorization: 'ApiKey top-secret-9' } },
        http: { port: 3000, authToken: 'top-secret-10', basicAuth: { username: 'ops', password: 'top-secret-11' } },
      },
      'connecting',
    );
    expect(out.text()).not.toMatch(/top-secret/);
    const [line] = out.lines();
    expect(line).toMatchObject({
      msg: 'connecting',
      app: 'redis-es-sync',
      password: '[redacted]',
      apiKey: '[redacted]',
      elasticsearch: { url: 'http://es:9200', password: '[redacted]', apiKey: '[redacted]' },
      config: { elasticsearch: { username: 'elastic', password: '[redacted]' } },
      auth: { username: '[redacted]', password: '[redacted]' },
      client: { auth: { apiKey: '[redacted]' } },
      headers: { authorization: '[redacted]', accept: 'json' },
      request: { headers: { authorization: '[redacted]' } },
      http: { port: 3000, authToken: '[redacted]', basicAuth: { username: 'ops', password: '[redacted]' } },
    });
  });

  it('keeps other fields, respects the level and child bindings', () => {
    const out = capture();
    const logger = createLogger('warn', out.stream);
    logger.info({ keys: 3 }, 'hidden');
    logger.child({ connection: 'source' }).warn({ keys: 4, password: 'p' }, 'shown');
    const lines = out.lines();
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ msg: 'shown', keys: 4, connection: 'source', password: '[redacted]', level: 40 });
    expect(typeof lines[0]!.time).toBe('string');
  });
});

describe('redactUrl', () => {
  it('hides the password of a URL and keeps the rest', () => {
    expect(redactUrl('redis://user:secret@host:6379/0')).toBe('redis://user:***@host:6379/0');
    expect(redactUrl('redis://:secret@host:6379')).toBe('redis://:***@host:6379');
    expect(redactUrl('https://elastic:pa%40ss@es.example:9200/')).toBe('https://elastic:***@es.example:9200/');
  });

  it('leaves URLs without a password unchanged and never echoes unparseable input', () => {
    expect(redactUrl('redis://host:6379')).toBe('redis://host:6379');
    expect(redactUrl('http://user@es:9200/')).toBe('http://user@es:9200/');
    expect(redactUrl('not a url with secret')).toBe('[unparseable url]');
  });
});

describe('errors in log lines', () => {
  it('keep type, message, code, cause and the command name, never the command arguments or client metadata', () => {
    const out = capture();
    const logger = createLogger('info', out.stream);
    const reply = Object.assign(new Error('WRONGPASS invalid username-password pair'), {
      command: { name: 'auth', args: ['top-secret-auth'] },
      code: 'WRONGPASS',
    });
    const es = Object.assign(new Error('security_exception'), {
      statusCode: 401,
      meta: { meta: { request: { params: { headers: { authorization: 'Basic top-secret-es' } } } } },
    });
    logger.warn({ err: new Error('lease check failed', { cause: reply }) }, 'a');
    logger.warn({ error: es }, 'b');
    logger.warn(new Error('at redis://u:top-secret-url@host:6379 nothing'));
    expect(out.text()).not.toMatch(/top-secret/);
    const [a, b] = out.lines();
    expect(a!.err).toMatchObject({
      type: 'Error',
      message: 'lease check failed',
      cause: { message: 'WRONGPASS invalid username-password pair', code: 'WRONGPASS', command: 'auth' },
    });
    expect(b!.error).toMatchObject({ statusCode: 401, message: 'security_exception' });
  });

  it('names an error class that calls itself otherwise by that name (ioredis 6: SimpleError says ReplyError)', () => {
    class SimpleError extends Error {
      override get name(): string {
        return 'ReplyError';
      }
    }
    class DependencyLikeError extends Error {}
    expect(serializeError(new SimpleError('WRONGPASS'))).toMatchObject({ type: 'ReplyError', message: 'WRONGPASS' });
    expect(serializeError(new DependencyLikeError('x'))).toMatchObject({ type: 'DependencyLikeError' });
    expect(serializeError(new TypeError('y'))).toMatchObject({ type: 'TypeError' });
  });

  it('masks passwords of URLs inside any text', () => {
    expect(redactText('connect to rediss://user:p%40ss@h:1/0 and http://:x@es:9200/')).toBe(
      'connect to rediss://user:***@h:1/0 and http://:***@es:9200/',
    );
    expect(redactText('no url here: a:b@c')).toBe('no url here: a:b@c');
  });

  it('routes console output to JSON lines, errors serialized', () => {
    const out = capture();
    const saved = { ...console };
    try {
      routeConsoleToLogger(createLogger('info', out.stream));
      console.error(Object.assign(new Error('WRONGPASS'), { command: { name: 'auth', args: ['top-secret-console'] } }));
      console.warn('IMPORTANT! Eviction policy is allkeys-lru. It should be "noeviction"');
    } finally {
      Object.assign(console, saved);
    }
    expect(out.text()).not.toMatch(/top-secret/);
    const lines = out.lines();
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatchObject({ level: 50, component: 'console', err: { message: 'WRONGPASS', command: 'auth' } });
    expect(lines[1]).toMatchObject({
      level: 40,
      msg: 'IMPORTANT! Eviction policy is allkeys-lru. It should be "noeviction"',
    });
  });
});
