import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Redis } from 'ioredis';
import { stringify } from 'yaml';
import { esUrl, uniqueIndex } from '../support/elasticsearch';
import { exited, startServers, waitFor, type TestServers } from '../support/pipeline';

const CLI = resolve(__dirname, '../../dist/cli/main.js');

interface Run {
  child: ChildProcess;
  out: () => string;
}

/** A CLI process at trace level with its own config file; stdout and stderr kept apart from nothing: both are searched. */
function start(command: string, env: Record<string, string>, prefix: string): Run {
  const dir = mkdtempSync(join(tmpdir(), 'res-secret-out-'));
  writeFileSync(
    join(dir, 'sync.yml'),
    stringify({
      queue: { prefix },
      mapping: { defaultIndex: uniqueIndex('secret-out') },
      producer: { reconcileIntervalMs: 0, leaseTtlMs: 1000, leaseRenewMs: 200 },
    }),
  );
  const child = spawn(process.execPath, [CLI, command], {
    env: { PATH: process.env.PATH ?? '', CONFIG: join(dir, 'sync.yml'), LOG_LEVEL: 'trace', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  return { child, out: () => out };
}

async function stop(run: Run): Promise<void> {
  if (run.child.exitCode !== null || run.child.signalCode !== null) return;
  run.child.kill('SIGTERM');
  const timer = setTimeout(() => run.child.kill('SIGKILL'), 15000);
  await exited(run.child);
  clearTimeout(timer);
}

/** Every line is a pino JSON line, or one of the CLI's own human messages (`redis-es-sync: …`). */
function nonJsonLines(out: string): string[] {
  return out
    .split('\n')
    .filter((l) => l.trim() !== '')
    .filter((line) => {
      if (line.startsWith('redis-es-sync: ')) return false;
      try {
        const parsed = JSON.parse(line) as { level?: unknown };
        return typeof parsed.level !== 'number';
      } catch {
        return true;
      }
    });
}

/** The secret itself and the encodings a client might send it in. */
function forms(user: string, secret: string): string[] {
  return [
    secret,
    Buffer.from(`${user}:${secret}`).toString('base64'),
    Buffer.from(secret).toString('base64'),
    encodeURIComponent(secret),
  ];
}

describe('wrong credentials never print a secret, and every line is JSON', () => {
  let servers: TestServers;
  let fakeEs: Server;
  let fakeEsUrl: string;
  let esAuthSeen = 0;
  const rightPassword = 'right-pw-0c2d';

  beforeAll(async () => {
    servers = await startServers('secret-out');
    for (const url of [servers.source.url, servers.queue.url]) {
      const admin = new Redis(url);
      await admin.call('ACL', 'SETUSER', 'sync', 'on', `>${rightPassword}`, '~*', '&*', '+@all');
      admin.disconnect();
    }
    // Elasticsearch with security on, refusing every credential the way it does (401, security_exception).
    fakeEs = createServer((req, res) => {
      if (req.headers.authorization) esAuthSeen++;
      req.resume();
      const reason = `unable to authenticate user [elastic] for REST request [${req.url ?? ''}]`;
      res.writeHead(401, {
        'content-type': 'application/json',
        'www-authenticate': 'Basic realm="security", charset="UTF-8"',
        'x-elastic-product': 'Elasticsearch',
      });
      res.end(
        JSON.stringify({
          error: { root_cause: [{ type: 'security_exception', reason }], type: 'security_exception', reason },
          status: 401,
        }),
      );
    });
    await new Promise<void>((r) => fakeEs.listen(0, '127.0.0.1', () => r()));
    const address = fakeEs.address();
    fakeEsUrl = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  });

  afterAll(async () => {
    await new Promise((r) => fakeEs.close(r));
    await servers.stop();
  });

  it('source Redis, queue Redis and Elasticsearch each with a wrong password, at trace', async () => {
    const sourceSecret = 'src-wrong-pw-5e81c3a7';
    const queueSecret = 'queue-wrong-pw-9b04d6f2';
    const esSecret = 'es-wrong-pw-1a7fe390';
    const goodSource = `redis://sync:${rightPassword}@127.0.0.1:${servers.source.port}`;
    const goodQueue = `redis://sync:${rightPassword}@127.0.0.1:${servers.queue.port}`;
    const runs: Record<string, { run: Run; secret: string; user: string; evidence: RegExp }> = {
      'run, wrong source password': {
        run: start(
          'run',
          {
            REDIS_URL: `redis://sync:${sourceSecret}@127.0.0.1:${servers.source.port}`,
            QUEUE_REDIS_URL: goodQueue,
            ELASTICSEARCH_URL: esUrl(),
          },
          'so-src',
        ),
        secret: sourceSecret,
        user: 'sync',
        evidence: /WRONGPASS/,
      },
      'run, wrong queue password': {
        run: start(
          'run',
          {
            REDIS_URL: goodSource,
            QUEUE_REDIS_URL: `redis://sync:${queueSecret}@127.0.0.1:${servers.queue.port}`,
            ELASTICSEARCH_URL: esUrl(),
          },
          'so-q1',
        ),
        secret: queueSecret,
        user: 'sync',
        evidence: /WRONGPASS/,
      },
      'producer, wrong queue password': {
        run: start(
          'producer',
          {
            REDIS_URL: goodSource,
            QUEUE_REDIS_URL: `redis://sync:${queueSecret}@127.0.0.1:${servers.queue.port}`,
            ELASTICSEARCH_URL: esUrl(),
          },
          'so-q2',
        ),
        secret: queueSecret,
        user: 'sync',
        evidence: /WRONGPASS/,
      },
      'run, wrong Elasticsearch password': {
        run: start(
          'run',
          {
            REDIS_URL: goodSource,
            QUEUE_REDIS_URL: goodQueue,
            ELASTICSEARCH_URL: fakeEsUrl,
            ELASTICSEARCH_USERNAME: 'elastic',
            ELASTICSEARCH_PASSWORD: esSecret,
          },
          'so-es',
        ),
        secret: esSecret,
        user: 'elastic',
        evidence: /"status":401/,
      },
      'run, wrong Elasticsearch API key': {
        run: start(
          'run',
          {
            REDIS_URL: goodSource,
            QUEUE_REDIS_URL: goodQueue,
            ELASTICSEARCH_URL: fakeEsUrl,
            ELASTICSEARCH_API_KEY: esSecret,
          },
          'so-es3',
        ),
        secret: esSecret,
        user: 'elastic',
        evidence: /"status":401/,
      },
      'run, Elasticsearch credentials in the URL': {
        run: start(
          'run',
          {
            REDIS_URL: goodSource,
            QUEUE_REDIS_URL: goodQueue,
            ELASTICSEARCH_URL: fakeEsUrl.replace('//', `//elastic:${esSecret}@`),
          },
          'so-es2',
        ),
        secret: esSecret,
        user: 'elastic',
        evidence: /"status":401/,
      },
    };
    try {
      for (const [name, r] of Object.entries(runs)) {
        await waitFor(
          `${name}: the refusal to be logged`,
          async () => r.run.out(),
          (o) => r.evidence.test(o),
          30000,
        );
      }
      // Let the clients retry a few times: every reconnect is another chance to print the command.
      await new Promise((r) => setTimeout(r, 3000));
    } finally {
      await Promise.all(Object.values(runs).map((r) => stop(r.run)));
    }
    expect(esAuthSeen).toBeGreaterThan(0);
    for (const [name, r] of Object.entries(runs)) {
      const out = r.run.out();
      for (const form of forms(r.user, r.secret))
        expect({ name, leaked: out.includes(form) }).toEqual({ name, leaked: false });
      expect({ name, nonJson: nonJsonLines(out) }).toEqual({ name, nonJson: [] });
    }
  });
});
