import { generationBumper } from '../../../features/search/generation';
import type { ClientOptions } from '@elastic/elasticsearch';
import { Redis } from 'ioredis';
import nock from 'nock';
import { ConfigSchema, type ConfigInput } from '../../../producers/capture/registry';
import { createElasticsearchSink } from '../../../shared/sink/elasticsearch';
import type { Sink } from '../../../shared/sink/port';
import { createLogger } from '../../../shared/platform/logger';
import type { SyncDocument } from '../../../shared/core/mapping/document';
import { KeyRouter } from '../../../shared/core/mapping/router';
import { RedisDbPool } from '../../../shared/platform/redis';
import { VersionCounter } from '../../../shared/core/versions';
import {
  BulkIndexer,
  ShutdownError,
  type BulkIndexerDeps,
  type ItemResult,
  type WorkItem,
} from '../../../workers/bulk-indexer';
import { startRedis, type RedisServerHandle } from '../../support/redis-server';

// The client's default connection is undici's, which nock cannot see; the Node http one is
// the same client and transport otherwise, so the adapter is used unchanged.
jest.mock('@elastic/elasticsearch', () => {
  const actual = jest.requireActual<typeof import('@elastic/elasticsearch')>('@elastic/elasticsearch');
  class HttpClient extends actual.Client {
    constructor(opts: ClientOptions) {
      super({ ...opts, Connection: actual.HttpConnection });
    }
  }
  return { ...actual, Client: HttpClient };
});

const ES_URL = 'http://es.test:9200';
const ES_HEADERS = { 'x-elastic-product': 'Elasticsearch', 'content-type': 'application/json' };

interface BulkMeta {
  _index: string;
  _id: string;
  version: number;
  version_type: string;
}

interface BulkLine {
  action: 'index' | 'delete';
  meta: BulkMeta;
  doc?: SyncDocument;
}

let server: RedisServerHandle;
let seed: Redis;
let counterRedis: Redis;
let source: RedisDbPool;
let sink: Sink;

beforeAll(async () => {
  server = await startRedis();
  seed = new Redis(server.url);
  counterRedis = new Redis(server.url);
  source = new RedisDbPool(server.url, 'bulk-indexer-test');
  sink = createElasticsearchSink({
    connection: { url: ES_URL, requestTimeoutMs: 5000 },
    engine: { product: 'elasticsearch', version: '8.19.9' },
    logger: createLogger('silent'),
    sourceOf: () => undefined,
  });
  nock.disableNetConnect();
  nock.enableNetConnect('127.0.0.1');
});

beforeEach(async () => {
  nock.cleanAll();
  await seed.flushall();
});

afterAll(async () => {
  nock.cleanAll();
  nock.enableNetConnect();
  nock.restore();
  await sink?.close();
  await source?.close();
  await Promise.all([seed, counterRedis].map((c) => c?.quit()));
  await server?.stop();
});

function router(mapping: ConfigInput['mapping'] = {}): KeyRouter {
  return KeyRouter.fromConfig(ConfigSchema.shape.mapping.parse(mapping), process.cwd(), [0]);
}

function indexer(
  overrides: Partial<BulkIndexerDeps> = {},
  settings: Partial<BulkIndexerDeps['settings']> = {},
): BulkIndexer {
  return new BulkIndexer({
    sink,
    source,
    counter: new VersionCounter(counterRedis, 'res-test:version'),
    router: router(),
    settings: {
      bulkMaxBytes: 5 * 1024 * 1024,
      maxDocumentBytes: 10 * 1024 * 1024,
      retryBaseMs: 5,
      retryMaxMs: 20,
      ...settings,
    },
    logger: createLogger('silent'),
    ...overrides,
  });
}

/** The NDJSON body of a bulk request, as action/meta/doc triples (nock 15 hands reply functions a fetch Request). */
async function parseBulk(request: Request): Promise<BulkLine[]> {
  const text = await request.text();
  const raw = text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  const lines: BulkLine[] = [];
  for (let i = 0; i < raw.length; i++) {
    const [action, meta] = Object.entries(raw[i]!)[0] as [string, BulkMeta];
    if (action === 'index') lines.push({ action, meta, doc: raw[++i] as unknown as SyncDocument });
    else if (action === 'delete') lines.push({ action, meta });
    else throw new Error(`unexpected bulk action ${action}`);
  }
  return lines;
}

interface ItemAnswer {
  status: number;
  error?: { type: string; reason: string };
}

/** A bulk response answering each line with the status `answer` picks (default: success). */
function bulkResponse(
  lines: readonly BulkLine[],
  answer: (line: BulkLine) => ItemAnswer = okAnswer,
): Record<string, unknown> {
  const items = lines.map((line) => {
    const a = answer(line);
    return { [line.action]: { _index: line.meta._index, _id: line.meta._id, _version: line.meta.version, ...a } };
  });
  return { took: 1, errors: items.some((_, i) => answer(lines[i]!).status >= 300), items };
}

function okAnswer(line: BulkLine): ItemAnswer {
  return { status: line.action === 'index' ? 201 : 200 };
}

function esError(status: number, type: string, reason: string): Record<string, unknown> {
  return { error: { root_cause: [{ type, reason }], type, reason }, status };
}

/** Records every bulk request; `answers[n]` answers the n-th, and the recorded lines are returned. */
function mockBulk(answers: ((lines: BulkLine[]) => Promise<nock.ReplyFnResult> | nock.ReplyFnResult)[]): {
  requests: BulkLine[][];
  scope: nock.Scope;
} {
  const requests: BulkLine[][] = [];
  let scope = nock(ES_URL).defaultReplyHeaders(ES_HEADERS);
  for (const answer of answers) {
    scope = scope
      .post('/_bulk')
      .query(true)
      .reply(async (request: Request) => {
        const lines = await parseBulk(request);
        requests.push(lines);
        return answer(lines);
      });
  }
  return { requests, scope };
}

const ok = (lines: BulkLine[]): nock.ReplyFnResult => [200, bulkResponse(lines)];
const items = (...keys: string[]): WorkItem[] => keys.map((key) => ({ db: 0, key }));
const indexed: ItemResult = { ok: true, result: 'indexed' };

describe('BulkIndexer against a mocked Elasticsearch', () => {
  it('sends external versions on every line, index and delete alike', async () => {
    await seed.set('s', 'text');
    await seed.hset('h', { a: '1' });
    await seed.rpush('l', 'x', 'y');
    const before = Date.now() * 1000;
    const { requests, scope } = mockBulk([ok]);
    const results = await indexer().index(items('s', 'h', 'l', 'gone'));
    scope.done();
    expect(results).toEqual([indexed, indexed, indexed, { ok: true, result: 'deleted' }]);
    expect(requests).toHaveLength(1);
    const lines = requests[0]!;
    expect(lines.map((l) => [l.action, l.meta._index, l.meta._id])).toEqual([
      ['index', 'redis', 's'],
      ['index', 'redis', 'h'],
      ['index', 'redis', 'l'],
      ['delete', 'redis', 'gone'],
    ]);
    for (const line of lines) {
      expect(line.meta.version_type).toBe('external');
      expect(Number.isSafeInteger(line.meta.version)).toBe(true);
      expect(line.meta.version).toBeGreaterThan(before);
    }
    // One block of consecutive versions per attempt.
    expect(lines.map((l) => l.meta.version - lines[0]!.meta.version)).toEqual([0, 1, 2, 3]);
    expect(lines[0]!.doc).toEqual({ key: 's', db: 0, type: 'string', value: 'text', content: 'text' });
    expect(lines[1]!.doc).toMatchObject({ type: 'hash', value: { a: '1' } });
    expect(lines[2]!.doc).toMatchObject({ type: 'list', value: ['x', 'y'] });
  });

  it('429 on the whole request: retries, re-reading Redis, with a higher version', async () => {
    await seed.set('doc:1', 'first');
    const { requests, scope } = mockBulk([
      async () => {
        // The key changes between the attempts: the retry must carry the new value.
        await seed.set('doc:1', 'second');
        return [429, esError(429, 'es_rejected_execution_exception', 'rejected execution of coordinating operation')];
      },
      ok,
    ]);
    const results = await indexer().index(items('doc:1'));
    scope.done();
    expect(results).toEqual([indexed]);
    expect(requests).toHaveLength(2);
    expect(requests[0]![0]!.doc?.value).toBe('first');
    expect(requests[1]![0]!.doc?.value).toBe('second');
    expect(requests[1]![0]!.meta.version).toBeGreaterThan(requests[0]![0]!.meta.version);
  });

  it('503 then success', async () => {
    await seed.set('a', '1');
    await seed.set('b', '2');
    const { requests, scope } = mockBulk([
      () => [503, esError(503, 'cluster_block_exception', 'blocked by: [SERVICE_UNAVAILABLE]')],
      ok,
    ]);
    const results = await indexer().index(items('a', 'b'));
    scope.done();
    expect(results).toEqual([indexed, indexed]);
    expect(requests.map((r) => r.map((l) => l.meta._id))).toEqual([
      ['a', 'b'],
      ['a', 'b'],
    ]);
  });

  it('a connection error then success', async () => {
    await seed.set('a', '1');
    let attempts = 0;
    const scope = nock(ES_URL)
      .defaultReplyHeaders(ES_HEADERS)
      .post('/_bulk')
      .query(true)
      .replyWithError(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }))
      .post('/_bulk')
      .query(true)
      .reply(async (request: Request) => {
        attempts++;
        return ok(await parseBulk(request));
      });
    const started = Date.now();
    const results = await indexer().index(items('a'));
    scope.done();
    expect(results).toEqual([indexed]);
    expect(attempts).toBe(1);
    // Retried on the connection error itself, not after the 5 s request timeout.
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('partial failure: each item gets what its status means; retryable items are sent again, a refused one is replaced by its stub', async () => {
    await seed.set('p:ok', 'fine');
    await seed.set('p:busy', 'later');
    await seed.set('p:bad', 'unparseable');
    await seed.set('p:old', 'stale');
    // p:gone does not exist: a delete, which Elasticsearch answers 404.
    const statuses: Record<string, ItemAnswer> = {
      'p:ok': { status: 201 },
      'p:busy': { status: 429, error: { type: 'es_rejected_execution_exception', reason: 'write queue full' } },
      'p:bad': {
        status: 400,
        error: { type: 'mapper_parsing_exception', reason: 'failed to parse field [value] of type [long]' },
      },
      'p:old': {
        status: 409,
        error: {
          type: 'version_conflict_engine_exception',
          reason: 'current version [99] is higher than the one provided',
        },
      },
      'p:gone': { status: 404 },
    };
    const { requests, scope } = mockBulk([(lines) => [200, bulkResponse(lines, (l) => statuses[l.meta._id]!)], ok]);
    const results = await indexer().index(items('p:ok', 'p:busy', 'p:bad', 'p:old', 'p:gone'));
    scope.done();
    expect(results).toEqual([
      indexed,
      indexed,
      { ok: false, reason: '400 mapper_parsing_exception: failed to parse field [value] of type [long]' },
      { ok: true, result: 'already-newer' },
      { ok: true, result: 'already-absent' },
    ]);
    expect(requests).toHaveLength(2);
    expect(requests[0]!.map((l) => `${l.action}:${l.meta._id}`)).toEqual([
      'index:p:ok',
      'index:p:busy',
      'index:p:bad',
      'index:p:old',
      'delete:p:gone',
    ]);
    expect(requests[1]!.map((l) => l.meta._id)).toEqual(['p:busy', 'p:bad']);
    const firstBusy = requests[0]!.find((l) => l.meta._id === 'p:busy');
    expect(requests[1]![0]!.meta.version).toBeGreaterThan(firstBusy?.meta.version ?? Infinity);
    // The refused document's old version must not stay searchable: a stub without the value
    // takes its place, saying why.
    const stub = requests[1]![1]!;
    expect(stub.action).toBe('index');
    expect(stub.doc).toEqual({
      db: 0,
      key: 'p:bad',
      type: 'string',
      refused: '400 mapper_parsing_exception: failed to parse field [value] of type [long]',
    });
  });

  it('a whole-request 400 rejects every item with the reason, without retrying', async () => {
    await seed.set('a', '1');
    const { requests, scope } = mockBulk([
      () => [400, esError(400, 'illegal_argument_exception', 'The bulk request must be terminated by a newline [\\n]')],
    ]);
    const results = await indexer().index(items('a', 'missing'));
    scope.done();
    expect(requests).toHaveLength(1);
    const reason =
      'bulk request rejected: 400 illegal_argument_exception: The bulk request must be terminated by a newline [\\n]';
    expect(results).toEqual([
      { ok: false, reason },
      { ok: false, reason },
    ]);
  });

  it('splits requests by bulkMaxBytes', async () => {
    const keys = ['k1', 'k2', 'k3', 'k4'];
    for (const k of keys) await seed.set(k, `value of ${k}`);
    const { requests, scope } = mockBulk(keys.map(() => ok));
    const results = await indexer({}, { bulkMaxBytes: 1 }).index(items(...keys));
    scope.done();
    expect(results).toEqual(keys.map(() => indexed));
    expect(requests).toHaveLength(4);
    expect(requests.map((r) => r.length)).toEqual([1, 1, 1, 1]);
    expect(requests.map((r) => r[0]!.meta._id).sort()).toEqual(keys);

    // A limit that fits two documents makes two requests of two.
    const lineBytes = Buffer.byteLength(
      `${JSON.stringify({ index: { _index: 'redis', _id: 'k1', version: requests[0]![0]!.meta.version, version_type: 'external' } })}\n${JSON.stringify(requests[0]![0]!.doc)}`,
    );
    const pairs = mockBulk([ok, ok]);
    await indexer({}, { bulkMaxBytes: 2 * (lineBytes + 1) + 10 }).index(items(...keys));
    pairs.scope.done();
    expect(pairs.requests.map((r) => r.length)).toEqual([2, 2]);
  });

  it('a document over maxDocumentBytes fails alone with the reason and is replaced by a stub; the rest of the batch is sent', async () => {
    await seed.set('small', 'x');
    await seed.set('huge', 'y'.repeat(4000));
    await seed.set('other', 'z');
    const { requests, scope } = mockBulk([ok]);
    const results = await indexer({}, { maxDocumentBytes: 2000 }).index(items('small', 'huge', 'other'));
    scope.done();
    expect(results[0]).toEqual(indexed);
    expect(results[2]).toEqual(indexed);
    expect(results[1]).toEqual({
      ok: false,
      reason: expect.stringMatching(
        /^document is \d+ bytes, over worker.maxDocumentBytes \(2000\); not sent$/,
      ) as unknown,
    });
    expect(requests).toHaveLength(1);
    expect(requests[0]!.map((l) => l.meta._id)).toEqual(['small', 'huge', 'other']);
    const stub = requests[0]![1]!.doc;
    expect(stub?.value).toBeUndefined();
    expect(stub?.refused).toMatch(/over worker.maxDocumentBytes/);
  });

  it('the same key twice in one call is read and sent once, and both get the result', async () => {
    await seed.set('dup', 'v');
    await seed.set('other', 'w');
    const { requests, scope } = mockBulk([ok]);
    const results = await indexer().index([...items('dup', 'other', 'dup'), { db: 1, key: 'dup' }]);
    scope.done();
    expect(requests[0]!.map((l) => `${l.action}:${l.meta._id}`)).toEqual(['index:dup', 'index:other', 'delete:dup']);
    expect(results).toEqual([indexed, indexed, indexed, { ok: true, result: 'deleted' }]);
  });

  it('skipped keys never reach Elasticsearch; an unshapeable key sends only its stub', async () => {
    await seed.set('j:good', '{"n":1}');
    await seed.set('j:bad', 'not json');
    await seed.set('elsewhere', 'x');
    const { requests, scope } = mockBulk([ok]);
    const results = await indexer({
      router: router({ unmatched: 'skip', rules: [{ match: 'j:*', index: 'json', json: true }] }),
    }).index(items('j:good', 'j:bad', 'elsewhere'));
    scope.done();
    expect(results[0]).toEqual(indexed);
    expect(results[1]).toEqual({ ok: false, reason: expect.stringContaining('not valid JSON') });
    expect(results[2]).toEqual({ ok: true, result: 'skipped' });
    expect(requests).toHaveLength(1);
    expect(requests[0]!.map((l) => [l.meta._index, l.meta._id, l.doc?.value])).toEqual([
      ['json', 'j:good', { n: 1 }],
      ['json', 'j:bad', undefined],
    ]);
    expect(requests[0]![1]!.doc?.refused).toContain('not valid JSON');
  });

  it('an aborted signal stops before anything is read or sent', async () => {
    await seed.set('a', '1');
    const controller = new AbortController();
    controller.abort();
    await expect(indexer({ signal: controller.signal }).index(items('a'))).rejects.toThrow(ShutdownError);
    expect(nock.pendingMocks()).toEqual([]);
  });

  it('gives up waiting for a retry when shut down, so the job can go back to the queue', async () => {
    await seed.set('a', '1');
    const controller = new AbortController();
    const { requests, scope } = mockBulk([
      () => {
        controller.abort();
        return [429, esError(429, 'es_rejected_execution_exception', 'busy')];
      },
    ]);
    await expect(
      indexer({ signal: controller.signal }, { retryBaseMs: 60_000, retryMaxMs: 60_000 }).index(items('a')),
    ).rejects.toThrow(ShutdownError);
    scope.done();
    expect(requests).toHaveLength(1);
  });
});

describe('BulkIndexer and the search cache generations', () => {
  const generations = (): BulkIndexerDeps['afterWrite'] => generationBumper(counterRedis, 'res-test', 60000);

  it('bumps each touched index once per answered bulk, never for a failed one', async () => {
    await seed.set('order:1', 'a');
    await seed.set('order:2', 'b');
    await seed.set('plain', 'c');
    const { scope } = mockBulk([() => [503, esError(503, 'unavailable_shards_exception', 'no shards')], ok]);
    const rules = router({ rules: [{ match: 'order:*', index: 'orders' }] });
    const results = await indexer({ router: rules, afterWrite: generations() }).index(
      items('order:1', 'order:2', 'plain'),
    );
    scope.done();
    expect(results).toEqual([indexed, indexed, indexed]);
    expect(await counterRedis.mget('res-test:gen:orders', 'res-test:gen:redis', 'res-test:gen:untouched')).toEqual([
      '1',
      '1',
      null,
    ]);
    expect(await counterRedis.pttl('res-test:gen:orders:settling')).toBeGreaterThan(0);
  });

  it('sends the bulk again when the generations cannot be bumped, so no cached answer outlives the change', async () => {
    await seed.set('k', 'v');
    const { requests, scope } = mockBulk([
      async (lines) => {
        // The counter's key holds a hash: INCR fails once, then the key is fixed.
        await counterRedis.hset('res-test:gen:redis', 'x', '1');
        return [200, bulkResponse(lines)];
      },
      async (lines) => {
        await counterRedis.del('res-test:gen:redis');
        return [200, bulkResponse(lines)];
      },
    ]);
    const results = await indexer({ afterWrite: generations() }).index(items('k'));
    scope.done();
    expect(results).toEqual([indexed]);
    expect(requests).toHaveLength(2);
    expect(await counterRedis.get('res-test:gen:redis')).toBe('1');
  });
});
