import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { esUrl, uniqueIndex } from '../support/elasticsearch';
import { getFreePort } from '../support/ports';
import { startRedis, type RedisServerHandle } from '../support/redis-server';

/**
 * Every shell command README.md and docs/*.md show in a `sh` block either runs here, as
 * written, against this test stack (a redis-server of its own, the global set-up's
 * Elasticsearch) and exits with the code the page implies, or is listed in NOT_RUN with the
 * reason. A newly documented command fails the first test until it is one or the other.
 * test/unit/docs/docs-commands.test.ts checks the names of scripts, commands and flags.
 */
const ROOT = resolve(__dirname, '../..');
const DOCS = [
  'README.md',
  ...readdirSync(join(ROOT, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => `docs/${f}`),
];

/** A documented command: the line of a `sh` block without its trailing comment. */
function documentedCommands(): { file: string; command: string }[] {
  const found: { file: string; command: string }[] = [];
  for (const file of DOCS) {
    const text = readFileSync(join(ROOT, file), 'utf8');
    for (const block of text.matchAll(/^```(?:sh|bash|shell)\n([\s\S]*?)^```/gm)) {
      for (const line of (block[1] ?? '').split('\n')) {
        const command = line.replace(/\s+#\s.*$/, '').trim();
        if (command !== '' && !command.startsWith('#')) found.push({ file, command });
      }
    }
  }
  return found;
}

/** Commands not run here, each with the reason. */
const NOT_RUN: Readonly<Record<string, string>> = {
  'npm ci && npm run setup': 'installs packages (the shared node_modules) and starts a stack on default ports',
  'npm test': 'the whole suite: this test is part of it',
  'node dist/cli/main.js rebuild --grace 2m':
    'waits out a 2-minute grace period; test/integration/rebuild.test.ts runs rebuild end to end, with a short one',
  'docker build -t redis-es-sync .': 'docker: not on the test machine',
  'docker run --rm -e REDIS_URL=… -e QUEUE_REDIS_URL=… -e ELASTICSEARCH_URL=… redis-es-sync producer':
    'docker, and placeholders (…)',
  'export DASHBOARD_PASSWORD=$(openssl rand -hex 16)': 'sets a variable for the docker compose lines that follow',
  'export HTTP_VIEWER_TOKEN=$(openssl rand -hex 24)': 'sets a variable for the docker compose lines that follow',
  'docker compose up -d --build': 'docker: not on the test machine',
  'COMPOSE_PROFILES=opensearch SEARCH_ENGINE_URL=http://opensearch:9200 docker compose up -d --build --scale elasticsearch=0':
    'docker: not on the test machine',
  'TEST_ENGINES=elasticsearch-8,opensearch-2 npx jest test/integration/engines':
    'jest inside jest (minutes); the same files run in this suite, against every engine',
  'TEST_ENGINES=none npx jest test/integration/search.test.ts': 'jest inside jest; the same file runs in this suite',
  'SINK_TEST_ENGINES=\'[{"id":"opensearch-2",…}]\' npx jest …': 'placeholders (…)',
  'docker compose up -d --scale worker=4': 'docker: not on the test machine',
  'docker compose up -d --scale producer=2': 'docker: not on the test machine',
  'xdg-open http://127.0.0.1:3000/queues': 'opens a browser',
  'curl -H "Authorization: Bearer $HTTP_VIEWER_TOKEN" http://127.0.0.1:3000/metrics':
    'needs the compose stack on the fixed port 3000',
  'curl "$ELASTICSEARCH_URL/redis/_doc/user:1?pretty"':
    'reads the index `redis` of the local stack, which the shared test Elasticsearch must not be given',
  'npm run seed -- 10000': 'writes into the index `redis` of the local stack (see above); 10,000 keys',
  'npm run cli -- dashboard': 'a long-running server on the fixed port 3000',
  'HTTP_PORT=9464 npm start': 'a long-running server on the fixed port 9464',
  'curl -XPUT -H \'content-type: application/json\' "$ELASTICSEARCH_URL/redis/_settings" -d \'{"index.blocks.write":true}\'':
    'blocks writes to the index `redis` of the shared test Elasticsearch',
  'curl -XPUT -H \'content-type: application/json\' "$ELASTICSEARCH_URL/redis/_settings" -d \'{"index.blocks.write":false}\'':
    'changes the index `redis` of the shared test Elasticsearch',
  'npm run bench':
    'the full benchmark (minutes, a stack of its own); test/integration/bench-smoke.test.ts runs --smoke',
  'npm run bench -- --only search': 'a benchmark scenario (minutes)',
  'npm run bench -- --smoke': 'test/integration/bench-smoke.test.ts runs it',
  'npm run bench -- --only baseline --baseline <git revision>': 'placeholder (<git revision>)',
  'npm run bench -- --only baseline --baseline <git revision> --baseline-keys 200000': 'placeholder (<git revision>)',
  "curl '127.0.0.1:3000/search/redis?q=apple&filter.type=hash&size=1'": 'needs `serve` on the fixed port 3000',
  "curl '127.0.0.1:3000/search/redis?q=apple&filter.type=hash&size=1&search_after=%5B1.2%2C%22basket%3A1%22%2C0%5D'":
    'needs `serve` on the fixed port 3000',
  "curl '127.0.0.1:3000/doc/redis/basket:1'": 'needs `serve` on the fixed port 3000',
  'curl -H \'content-type: application/json\' 127.0.0.1:3000/search/redis -d \'{"query":{"bool":{"must":[{"match":{"content":"apple"}}],"filter":[{"prefix":{"key":"fruit:"}}]}},"sort":"key:desc","size":5}\'':
    'needs `serve` on the fixed port 3000',
};

/** Long-running commands: started, asked for /healthz on the port the test gives them, stopped. */
const SERVERS: readonly string[] = ['npm start'];

/**
 * Commands run to completion, in this order, with the exit code they must end with. `verify`
 * runs before the `redis-cli` writes: no service indexes them here (the pages run `npm start`
 * in another terminal), and verify rightly fails on unindexed keys.
 */
const RUN: Readonly<Record<string, number>> = {
  'npm run cli -- verify': 0,
  'set -a; . .stack/env; set +a': 0,
  'redis-cli -u "$REDIS_URL" HSET user:1 name Ada city Oslo': 0,
  'redis-cli -u "$REDIS_URL" SET demo:1 hello': 0,
  'npm run cli -- failures': 0,
  'npm run cli -- replay --dry-run --reason document_parsing': 0,
  "npm run cli -- replay --pattern 'order:*'": 0,
  'npm run cli -- replay --dry-run --reason cluster_block': 0,
  "npm run cli -- replay --reason 'document_parsing_exception' --pattern 'order:*'": 0,
  'npm run cli -- replay --since 2026-11-26T14:00:00Z': 0,
  'npm run cli -- replay': 0,
  'npm run cli -- replay --reason cluster_block': 0,
  'promtool check rules deploy/prometheus/alerts.yml': 0,
  '(cd deploy/prometheus && promtool test rules alerts.test.yml)': 0,
};

describe('the documented commands', () => {
  let redis: RedisServerHandle;
  let dir: string;
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    redis = await startRedis({ notifyKeyspaceEvents: 'KEA' });
    // A fresh temp "checkout" for commands that name files relative to it (`.stack/env`);
    // npm scripts run in the repository, whose dist/ the integration project builds.
    dir = mkdtempSync(join(tmpdir(), 'res-docs-'));
    mkdirSync(join(dir, '.stack'));
    const stackEnv = `REDIS_URL=${redis.url}\nQUEUE_REDIS_URL=${redis.url}\nELASTICSEARCH_URL=${esUrl()}\n`;
    writeFileSync(join(dir, '.stack', 'env'), stackEnv);
    // The index is the test's own: the shared Elasticsearch is not the local stack's.
    const config = join(dir, 'sync.yml');
    writeFileSync(config, `mapping:\n  defaultIndex: ${uniqueIndex('docs-commands')}\n`);
    env = {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      STACK_DIR: join(dir, '.stack'),
      CONFIG: config,
      LOG_LEVEL: 'warn',
    };
  });

  afterAll(async () => {
    await redis.stop();
  });

  it('are each either run here or listed with the reason they are not', () => {
    const unclassified = documentedCommands().filter(
      ({ command }) => !(command in RUN) && !(command in NOT_RUN) && !SERVERS.includes(command),
    );
    expect(unclassified).toEqual([]);
    // A listed command the pages no longer show is dropped from the lists.
    const shown = new Set(documentedCommands().map((c) => c.command));
    const stale = [...Object.keys(RUN), ...Object.keys(NOT_RUN), ...SERVERS].filter((c) => !shown.has(c));
    expect(stale).toEqual([]);
  });

  it.each(Object.entries(RUN))('%s', (command, code) => {
    // The pages' `$REDIS_URL` lines follow `set -a; . .stack/env; set +a` in the same terminal.
    const stackShell =
      command.includes('.stack/env') || /\$(REDIS_URL|QUEUE_REDIS_URL|ELASTICSEARCH_URL)\b/.test(command);
    const script = stackShell && !command.includes('.stack/env') ? `set -a; . .stack/env; set +a; ${command}` : command;
    const result = spawnSync('bash', ['-c', script], {
      cwd: stackShell ? dir : ROOT,
      env,
      encoding: 'utf8',
      timeout: 120_000,
    });
    expect({ command, status: result.status, stderr: result.status === code ? '' : result.stderr }).toEqual({
      command,
      status: code,
      stderr: '',
    });
  });

  it.each(SERVERS)(
    '%s starts and answers /healthz',
    async (command) => {
      const port = await getFreePort();
      const child = spawn('bash', ['-c', `exec ${command}`], {
        cwd: ROOT,
        env: { ...env, HTTP_PORT: String(port) },
        stdio: 'ignore',
        detached: true,
      });
      try {
        let status = 0;
        for (let i = 0; i < 240 && status !== 200; i++) {
          status = await fetch(`http://127.0.0.1:${port}/healthz`).then(
            (r) => r.status,
            () => 0,
          );
          if (status !== 200) await new Promise((r) => setTimeout(r, 250));
        }
        expect(status).toBe(200);
      } finally {
        if (child.pid !== undefined) process.kill(-child.pid, 'SIGTERM');
        await new Promise((r) => child.once('exit', r));
      }
    },
    90_000,
  );
});
