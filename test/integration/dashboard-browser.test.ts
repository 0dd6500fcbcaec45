import { existsSync } from 'node:fs';
import { Redis } from 'ioredis';
import { chromium, type Browser } from 'playwright-core';
import { getDoc, startPipeline, startServers, testConfigInput, waitFor, type TestPipeline, type TestServers } from '../support/pipeline';
import { getFreePort } from '../support/ports';
import { failuresKey } from '../../shared/failure-store';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const SCREENSHOT_DIR = process.env.SCREENSHOT_DIR ?? '/tmp';

/** The dashboard as an operator sees it: Debian's headless Chromium, basic auth, a failed job and its retry. */
describe('the dashboard in a browser', () => {
  let servers: TestServers;
  let redis: Redis;
  let pipeline: TestPipeline;
  let browser: Browser;
  let base: string;
  const credentials = { username: 'ops', password: 'dashboard-pw' };

  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install chromium (.ci/run does), or set CHROMIUM_PATH`);
    servers = await startServers('browser');
    redis = new Redis(servers.source.url);
    const port = await getFreePort();
    base = `http://127.0.0.1:${port}`;
    // attempts: 1, so the job the test breaks goes to failed at once.
    pipeline = await startPipeline(testConfigInput(servers, { http: { port, basicAuth: credentials }, producer: { enqueueBatch: 1 }, queue: { url: servers.queue.url, attempts: 1 } }));
    await pipeline.service.producer!.idle();
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
    });
  });

  afterAll(async () => {
    await browser?.close();
    await pipeline?.stop();
    redis?.disconnect();
    await servers?.stop();
  });

  it('shows the queue and a failed job with its reason, and retries it', async () => {
    const { queueRedis } = pipeline.ctx;
    const queue = pipeline.ctx.queue();
    // Refused documents are kept per key (the failure store), not as failed jobs; a job fails
    // when the queue Redis refuses its bookkeeping, here because the store's key has the wrong type.
    const storeKey = failuresKey(pipeline.ctx.config.queue.prefix);
    await queueRedis.set(storeKey, 'not a hash');
    await redis.hset('order:7', { total: '12.5' });
    await waitFor('order:7 to fail', () => queue.getFailedCount(), (n) => n === 1, 20000);

    const context = await browser.newContext({ httpCredentials: credentials, viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    try {
      await page.goto(`${base}/queues`);
      await page.getByRole('link', { name: /changes/ }).first().waitFor({ timeout: 20000 });

      await page.goto(`${base}/queues/queue/changes?status=failed`);
      // The job's failure reason, as the queue Redis gave it.
      await page.getByText(/WRONGTYPE/).first().waitFor({ timeout: 20000 });
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
      await waitFor('the retried job to complete', () => queue.getFailedCount(), (n) => n === 0, 20000);
      expect(await getDoc(pipeline.ctx, servers.index, 'order:7')).toBeDefined();
      await page.getByText(/WRONGTYPE/).first().waitFor({ state: 'detached', timeout: 20000 });
      await page.screenshot({ path: `${SCREENSHOT_DIR}/redis-es-sync-dashboard-retried.png`, fullPage: true });
    } finally {
      await context.close();
    }
  });
});
