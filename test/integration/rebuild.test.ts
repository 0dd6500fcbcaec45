import { Redis } from 'ioredis';
import { keyWriter } from '../../cli/commands/rebuild';
import type { StatusReport } from '../../cli/status/report';
import { rebuild, RebuildError } from '../../features/maintenance/rebuild';
import { readRebuildState } from '../../shared/core/rebuild-state';
import type { ConfigInput } from '../../producers/capture/registry';
import { DEFAULT_INDEX_MAPPINGS, indexBody } from '../../shared/sink/indices';
import { esUrl } from '../support/elasticsearch';
import {
  exited,
  spawnCli,
  startPipeline,
  startServers,
  testConfigInput,
  verifyNow,
  waitFor,
  waitInSync,
  type TestPipeline,
  type TestServers,
} from '../support/pipeline';

async function es(method: string, path: string, body?: unknown): Promise<{ status: number; body: unknown }> {
  const ndjson = typeof body === 'string';
  const response = await fetch(`${esUrl()}${path}`, {
    method,
    headers: { 'content-type': ndjson ? 'application/x-ndjson' : 'application/json' },
    ...(body === undefined ? {} : { body: ndjson ? body : JSON.stringify(body) }),
  });
  const text = await response.text();
  return { status: response.status, body: text === '' ? undefined : (JSON.parse(text) as unknown) };
}

/** What the name resolves to for a search: the indices behind the alias, or the name itself. */
async function behind(name: string): Promise<string> {
  const answer = await es('GET', `/_alias/${name}`);
  if (answer.status !== 200) return name;
  return Object.keys(answer.body as Record<string, unknown>)
    .sort()
    .join(',');
}

async function seed(redis: Redis, n: number): Promise<void> {
  for (let start = 0; start < n; start += 1000) {
    const pipe = redis.pipeline();
    for (let i = start; i < Math.min(n, start + 1000); i++) pipe.hset(`user:${i}`, { name: `n${i}`, v: '0' });
    await pipe.exec();
  }
}

describe('rebuild: a new generation behind the alias', () => {
  let servers: TestServers;
  let redis: Redis;
  let pipeline: TestPipeline | undefined;

  afterEach(async () => {
    await pipeline?.stop();
    pipeline = undefined;
    redis.disconnect();
    for (const g of [1, 2, 3]) await es('DELETE', `/${servers.index}-g${g}`);
    if ((await behind(servers.index)) === servers.index) await es('DELETE', `/${servers.index}`);
    await servers.stop();
  });

  test('with a changed mapping and live writes, search answers in full throughout and the alias swaps once', async () => {
    servers = await startServers('rebuild-live');
    redis = new Redis(servers.source.url);
    const keys = 400;
    await seed(redis, keys);
    const input = testConfigInput(servers);
    pipeline = await startPipeline(input);
    await waitInSync(pipeline.ctx);
    const { index } = servers;
    expect(await behind(index)).toBe(`${index}-g1`);
    await es('POST', `/${index}/_refresh`);

    let writing = true;
    let written = 0;
    const writer = (async () => {
      while (writing) {
        await redis.hset(`user:${written % keys}`, 'v', String(++written));
        await new Promise((r) => setTimeout(r, 10));
      }
    })();
    const counts: number[] = [];
    const seen: string[] = [];
    let watching = true;
    const watcher = (async () => {
      while (watching) {
        const answer = await es('POST', `/${index}/_count`);
        counts.push(answer.status === 200 ? (answer.body as { count: number }).count : -answer.status);
        const now = await behind(index);
        if (seen.at(-1) !== now) seen.push(now);
        await new Promise((r) => setTimeout(r, 100));
      }
    })();

    const changed: ConfigInput = {
      ...input,
      mapping: {
        defaultIndex: index,
        indices: {
          [index]: {
            mappings: {
              ...DEFAULT_INDEX_MAPPINGS,
              properties: { ...DEFAULT_INDEX_MAPPINGS.properties, added: { type: 'keyword' } },
            },
          },
        },
      },
    };
    const cli = spawnCli(changed, ['rebuild', '--grace', '2s']);
    const code = await exited(cli);
    watching = false;
    await watcher;
    writing = false;
    await writer;

    expect({ code, output: cli.output() }).toEqual({ code: 0, output: expect.stringContaining('swapped') as string });
    expect(cli.output()).toContain(`${index} → ${index}-g2`);
    expect(written).toBeGreaterThan(20);
    expect(counts.length).toBeGreaterThan(5);
    expect(counts.filter((c) => c !== keys)).toEqual([]);
    expect(seen).toEqual([`${index}-g1`, `${index}-g2`]);
    // The grace period ran out before the command returned: the old generation is gone.
    expect((await es('HEAD', `/${index}-g1`)).status).toBe(404);
    const mapping = await es('GET', `/${index}/_mapping`);
    expect(mapping.body).toMatchObject({
      [`${index}-g2`]: { mappings: { properties: { added: { type: 'keyword' } } } },
    });
    expect(await readRebuildState(pipeline.ctx.queueRedis, pipeline.ctx.config.queue.prefix)).toBeUndefined();
    await waitInSync(pipeline.ctx);
  });

  test('a rebuild killed half-way resumes and completes, turning a concrete index into an alias', async () => {
    servers = await startServers('rebuild-kill');
    redis = new Redis(servers.source.url);
    const { index } = servers;
    const input = testConfigInput(servers, { rebuild: { batchKeys: 20 }, producer: { scanCount: 20 } });
    // A deployment from before aliases: the index is a concrete one.
    const body = indexBody(index, { defaultIndex: index, unmatched: 'index', rules: [], indices: {} });
    expect((await es('PUT', `/${index}`, body)).status).toBe(200);
    await seed(redis, 3000);
    pipeline = await startPipeline(input);
    await waitInSync(pipeline.ctx);
    expect(await behind(index)).toBe(index);
    const { queueRedis } = pipeline.ctx;
    const prefix = pipeline.ctx.config.queue.prefix;

    const first = spawnCli(input, ['rebuild', '--grace', '0s']);
    const half = await waitFor(
      'the rebuild to be part-way through its snapshot',
      () => readRebuildState(queueRedis, prefix),
      (s) => s?.phase === 'snapshot' && s.done > 0,
      60000,
      20,
    );
    first.kill('SIGKILL');
    await exited(first);
    const left = await readRebuildState(queueRedis, prefix);
    expect(left).toMatchObject({ phase: 'snapshot', targets: [{ index, from: index, to: `${index}-g2` }] });
    expect(left?.done).toBeLessThan(3000);
    expect(left?.done).toBeGreaterThanOrEqual(half?.done ?? 0);
    expect(await behind(index)).toBe(index);

    // The operator's view of the interrupted rebuild: status shows it where it stopped.
    const status = spawnCli(input, ['status', '--json', '--no-keys']);
    let statusOut = '';
    status.stdout?.on('data', (d: Buffer) => (statusOut += d.toString()));
    await exited(status);
    expect((JSON.parse(statusOut) as StatusReport).rebuild).toMatchObject({
      phase: 'snapshot',
      indices: [{ index, from: index, to: `${index}-g2`, generation: 2 }],
      done: left?.done,
      total: left?.total,
    });

    const second = spawnCli(input, ['rebuild', '--grace', '0s']);
    expect(await exited(second)).toBe(0);
    expect(second.output()).toContain('rebuild (resumed): swapped');
    expect(await behind(index)).toBe(`${index}-g2`);
    expect(await readRebuildState(queueRedis, prefix)).toBeUndefined();
    await waitInSync(pipeline.ctx);
  });

  test('a rebuild whose verify fails keeps the old alias and says why', async () => {
    servers = await startServers('rebuild-fail');
    redis = new Redis(servers.source.url);
    const { index } = servers;
    await seed(redis, 50);
    pipeline = await startPipeline(testConfigInput(servers));
    await waitInSync(pipeline.ctx);
    const { ctx } = pipeline;
    const prefix = ctx.config.queue.prefix;
    const attempt = rebuild(
      {
        sink: ctx.sink,
        source: ctx.source,
        queueRedis: ctx.queueRedis,
        router: ctx.router,
        mapping: ctx.config.mapping,
        logger: ctx.logger,
        writer: keyWriter(ctx),
        // Sabotage between the snapshot and the verify: a document no key stands for.
        onPhase: async (phase, targets) => {
          if (phase !== 'verify') return;
          const to = targets[0]?.to ?? '';
          const doc = { key: 'ghost', db: 0, type: 'string', value: 'boo' };
          await es('PUT', `/${to}/_doc/ghost?version=${Number.MAX_SAFE_INTEGER}&version_type=external`, doc);
        },
      },
      {
        prefix,
        databases: ctx.config.redis.databases,
        patterns: ctx.config.redis.patterns,
        scanCount: 100,
        batchKeys: 100,
        verifySettleMs: 0,
        keep: false,
        graceMs: 0,
      },
    );
    const failure = await attempt.then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(failure).toBeInstanceOf(RebuildError);
    const err = failure as RebuildError;
    expect(err.code).toBe('REBUILD_VERIFY_FAILED');
    expect(err.message).toContain('extra ghost');
    expect(err.message).toContain(`nothing was swapped (${index} → ${index}-g1)`);
    expect(await behind(index)).toBe(`${index}-g1`);
    expect(await readRebuildState(ctx.queueRedis, prefix)).toBeUndefined();
    expect(await verifyNow(ctx)).toMatchObject({ checked: 50, missing: [], stale: [], extra: [] });
    // The CLI turns a rebuild's refusal into exit 1 and its reason.
    const refused = spawnCli(testConfigInput(servers), ['rebuild', '--index', 'no-such-index']);
    expect(await exited(refused)).toBe(1);
    expect(refused.output()).toContain('rebuild: no rule writes to index no-such-index');
    // The next rebuild replaces the failed generation.
    const cli = spawnCli(testConfigInput(servers), ['rebuild', '--grace', '0s']);
    expect(await exited(cli)).toBe(0);
    expect(await behind(index)).toBe(`${index}-g2`);
  });
});
