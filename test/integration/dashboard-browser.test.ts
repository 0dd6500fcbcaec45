import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Redis } from 'ioredis';
import { chromium, type Browser, type Page } from 'playwright-core';
import { parse, parseAllDocuments } from 'yaml';
import { esUrl } from '../support/elasticsearch';
import {
  exited,
  getDoc,
  startPipeline,
  startServers,
  testConfigInput,
  waitFor,
  type TestPipeline,
  type TestServers,
} from '../support/pipeline';
import { getFreePort } from '../support/ports';
import { failuresKey } from '../../shared/core/failure-store';

const REPO = resolve(__dirname, '../..');

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const SCREENSHOT_DIR = process.env.SCREENSHOT_DIR ?? '/tmp';

/** The dashboard as an operator sees it: Debian's headless Chromium, basic auth, a failed job and its retry. */
describe('the dashboard in a browser', () => {
  let servers: TestServers;
  let redis: Redis;
  let pipeline: TestPipeline;
  let browser: Browser;
  let base: string;
  const credentials = { username: 'ops', password: 'dashboard-pw-4e1b9c' };

  beforeAll(async () => {
    if (!existsSync(CHROMIUM))
      throw new Error(`${CHROMIUM} is missing: apt-get install chromium (.ci/run does), or set CHROMIUM_PATH`);
    servers = await startServers('browser');
    redis = new Redis(servers.source.url);
    const port = await getFreePort();
    base = `http://127.0.0.1:${port}`;
    // attempts: 1, so the job the test breaks goes to failed at once.
    pipeline = await startPipeline(
      testConfigInput(servers, {
        http: { port, operator: { basic: credentials } },
        // The test breaks writes and counts failed jobs: the canary's heartbeat jobs would fail too.
        producer: { enqueueBatch: 1, canary: { enabled: false } },
        queue: { url: servers.queue.url, attempts: 1 },
      }),
    );
    await pipeline.service.producer!.idle();
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
      ],
    });
  });

  afterAll(async () => {
    await browser?.close();
    await pipeline?.stop();
    redis?.disconnect();
    await servers?.stop();
  });

  /** Requests that left the dashboard's origin, and what the browser refused under the CSP. */
  function watch(page: Page, origin: string): { foreign: string[]; refused: string[] } {
    const seen = { foreign: [] as string[], refused: [] as string[] };
    page.on('request', (r) => {
      if (!r.url().startsWith(origin) && !r.url().startsWith('data:')) seen.foreign.push(r.url());
    });
    page.on('console', (m) => {
      if (/Content Security Policy|Refused to/i.test(m.text())) seen.refused.push(m.text());
    });
    return seen;
  }

  /**
   * The dashboard as shipped: the environment the compose file or the Kubernetes manifests give
   * its container, secrets generated as docs/deploying.md says, the URLs pointed at this test's servers.
   */
  async function shippedDashboard(env: Record<string, string>, password: string): Promise<void> {
    const port = await getFreePort();
    const child = spawn(process.execPath, [join(REPO, 'dist/cli/main.js'), 'dashboard'], {
      env: {
        PATH: process.env.PATH ?? '',
        ...env,
        REDIS_URL: servers.source.url,
        QUEUE_REDIS_URL: servers.queue.url,
        ELASTICSEARCH_URL: esUrl(),
        HTTP_PORT: String(port),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const origin = `http://127.0.0.1:${port}`;
    try {
      await waitFor(
        'the dashboard to listen',
        async () => out,
        (o) => o.includes('http surface listening') || child.exitCode !== null,
        20000,
      );
      expect(child.exitCode).toBeNull();
      // What makes a browser ask for the user and password instead of showing {"error":"unauthorized"}.
      const bare = await fetch(`${origin}/queues`);
      expect(bare.status).toBe(401);
      expect(bare.headers.get('www-authenticate')).toMatch(/^Basic /);
      const context = await browser.newContext({ httpCredentials: { username: 'ops', password } });
      const page = await context.newPage();
      const seen = watch(page, origin);
      try {
        await page.goto(`${origin}/queues`);
        await page
          .getByRole('link', { name: /changes/ })
          .first()
          .waitFor({ timeout: 20000 });
      } finally {
        await context.close();
      }
      expect(seen).toEqual({ foreign: [], refused: [] });
    } finally {
      child.kill('SIGTERM');
      await exited(child);
    }
  }

  const secret = (): string => randomBytes(16).toString('hex');
  const secretFiles = mkdtempSync(join(tmpdir(), 'res-browser-secrets-'));

  it('opens the dashboard of docker-compose.yml as docs/deploying.md says: the browser asks for ops and $DASHBOARD_PASSWORD', async () => {
    const compose = parse(readFileSync(join(REPO, 'docker-compose.yml'), 'utf8'), { merge: true }) as {
      services: { dashboard: { environment: Record<string, string> } };
      secrets: Record<string, { environment: string }>;
    };
    const password = secret();
    const fromShell: Record<string, string> = { DASHBOARD_PASSWORD: password, HTTP_VIEWER_TOKEN: secret() };
    const env: Record<string, string> = {};
    for (const [name, value] of Object.entries(compose.services.dashboard.environment)) {
      const m = /^\/run\/secrets\/(.+)$/.exec(value);
      if (!m) {
        env[name] = value;
        continue;
      }
      // A compose secret is a file under /run/secrets holding the shell variable it names.
      const file = join(secretFiles, m[1]!);
      writeFileSync(file, fromShell[compose.secrets[m[1]!]!.environment]!);
      env[name] = file;
    }
    await shippedDashboard(env, password);
  });

  it('opens the dashboard of deploy/kubernetes the same way, through its Secret', async () => {
    const docs = parseAllDocuments(readFileSync(join(REPO, 'deploy/kubernetes/secret.yaml'), 'utf8')).map(
      (d) => d.toJS() as { metadata: { name: string }; stringData: Record<string, string> },
    );
    const secretData = docs.find((d) => d.metadata.name === 'redis-es-sync-secrets')!.stringData;
    const deployment = parseAllDocuments(
      readFileSync(join(REPO, 'deploy/kubernetes/dashboard.yaml'), 'utf8'),
    )[0]!.toJS() as {
      spec: { template: { spec: { containers: { env: { name: string; value?: string }[] }[] } } };
    };
    const password = secret();
    // Every CHANGE-ME replaced, as the Secret asks.
    const env: Record<string, string> = {};
    for (const [name, value] of Object.entries(secretData))
      env[name] = value === 'CHANGE-ME' ? (name === 'HTTP_OPERATOR_PASSWORD' ? password : secret()) : value;
    for (const e of deployment.spec.template.spec.containers[0]!.env)
      if (e.value !== undefined && e.name !== 'CONFIG') env[e.name] = e.value;
    expect(env.HTTP_OPERATOR_USERNAME).toBe('ops');
    await shippedDashboard(env, password);
  });

  it('shows the queue and a failed job with its reason, and retries it', async () => {
    const { queueRedis } = pipeline.ctx;
    const queue = pipeline.ctx.queues().partitions[0]!;
    // Refused documents are kept per key (the failure store), not as failed jobs; a job fails
    // when the queue Redis refuses its bookkeeping, here because the store's key has the wrong type.
    const storeKey = failuresKey(pipeline.ctx.config.queue.prefix);
    await queueRedis.set(storeKey, 'not a hash');
    await redis.hset('order:7', { total: '12.5' });
    await waitFor(
      'order:7 to fail',
      () => queue.getFailedCount(),
      (n) => n === 1,
      20000,
    );

    const context = await browser.newContext({ httpCredentials: credentials, viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    const seen = watch(page, base);
    try {
      await page.goto(`${base}/queues`);
      await page
        .getByRole('link', { name: /changes/ })
        .first()
        .waitFor({ timeout: 20000 });

      await page.goto(`${base}/queues/queue/changes?status=failed`);
      // The job's failure reason, as the queue Redis gave it.
      await page
        .getByText(/WRONGTYPE/)
        .first()
        .waitFor({ timeout: 20000 });
      await page.screenshot({ path: `${SCREENSHOT_DIR}/redis-es-sync-dashboard-failed.png`, fullPage: true });

      await queueRedis.del(storeKey);
      // The job card's actions are icon buttons named by a tooltip; the first is Retry.
      const firstAction = page.locator('li > [data-base-ui-tooltip-trigger] > button').first();
      await firstAction.hover();
      await page.getByText('Retry', { exact: true }).waitFor();
      await firstAction.click();
      const confirm = page.getByRole('alertdialog');
      await expect(confirm.textContent()).resolves.toContain('retry this job');
      await confirm.getByRole('button', { name: 'Confirm' }).click();
      // Its write had gone through; the retry completes the job's bookkeeping.
      await waitFor(
        'the retried job to complete',
        () => queue.getFailedCount(),
        (n) => n === 0,
        20000,
      );
      expect(await getDoc(pipeline.ctx, servers.index, 'order:7')).toBeDefined();
      await page
        .getByText(/WRONGTYPE/)
        .first()
        .waitFor({ state: 'detached', timeout: 20000 });
      await page.screenshot({ path: `${SCREENSHOT_DIR}/redis-es-sync-dashboard-retried.png`, fullPage: true });
    } finally {
      await context.close();
    }
    // Nothing loaded from outside the process, nothing refused by the Content-Security-Policy.
    expect(seen).toEqual({ foreign: [], refused: [] });
  });
});
