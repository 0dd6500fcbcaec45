import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createTcpServer, type Server as TcpServer } from 'node:net';
import type { AppConfig } from '../../shared/platform/config/schema';
import { createLogger } from '../../shared/platform/logger';
import { indexBody } from '../../shared/sink/indices';
import { sinkFor } from '../../shared/sink/create-sink';
import type { BulkOperation, ItemOutcome, ScannedDoc, Sink } from '../../shared/sink/port';
import { testEngine, type EngineId, type TestEngine } from './engines';
import { getFreePort } from './ports';
import { seededRandom } from './random';

/**
 * Every sink adapter passes this suite against its real server. It speaks only the `Sink`
 * interface; raw HTTP (the REST API every supported engine shares) only sets up and reads back.
 */
/** Generous: the race sends 30 bulks at once to a small test server. */
const REQUEST_TIMEOUT_MS = 30000;
/** The outage test's sink: a frozen engine must fail its bulk this fast. */
const OUTAGE_TIMEOUT_MS = 2000;

export function buildSink(engine: TestEngine, connection: Partial<AppConfig['elasticsearch']> = {}): Sink {
  // The adapter the tool itself picks for this product and version (shared/sink/create-sink.ts).
  return sinkFor(
    { product: engine.product, version: engine.version },
    {
      connection: { url: engine.url, requestTimeoutMs: REQUEST_TIMEOUT_MS, ...connection },
      logger: createLogger('silent'),
      sourceOf: () => undefined,
    },
  );
}

/** One raw REST call; answers status and parsed JSON (or text). */
export async function raw(
  engine: TestEngine,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; body: unknown }> {
  const ndjson = typeof body === 'string';
  const response = await fetch(`${engine.url}${path}`, {
    method,
    headers: { 'content-type': ndjson ? 'application/x-ndjson' : 'application/json' },
    ...(body === undefined ? {} : { body: ndjson ? body : JSON.stringify(body) }),
  });
  const text = await response.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // Not JSON (HEAD, or an error page): the text is the answer.
  }
  return { status: response.status, body: parsed };
}

function indexOp(index: string, id: string, version: number, doc: Record<string, unknown>): BulkOperation {
  const action = { index: { _index: index, _id: id, version, version_type: 'external' } };
  const body = `${JSON.stringify(action)}\n${JSON.stringify(doc)}`;
  return { op: 'index', index, id, version, body, bytes: Buffer.byteLength(body) };
}

function deleteOp(index: string, id: string, version: number): BulkOperation {
  const action = { delete: { _index: index, _id: id, version, version_type: 'external' } };
  const body = JSON.stringify(action);
  return { op: 'delete', index, id, version, body, bytes: Buffer.byteLength(body) };
}

const INDEXED: ItemOutcome = { kind: 'done', result: 'indexed' };
const NEWER: ItemOutcome = { kind: 'done', result: 'already-newer' };

function shuffle<T>(items: T[], random: () => number): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [items[i], items[j]] = [items[j] as T, items[i] as T];
  }
  return items;
}

async function listen(server: Server | TcpServer): Promise<number> {
  const port = await getFreePort();
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return port;
}

export function describeSinkConformance(engineId: EngineId): void {
  describe(`sink conformance: ${engineId}`, () => {
    let engine: TestEngine;
    let sink: Sink;
    const prefix = `conf-${engineId}-${process.pid}`.toLowerCase();
    const created: string[] = [];
    const fresh = async (name: string, body: unknown = { settings: { number_of_shards: 1 } }): Promise<string> => {
      const index = `${prefix}-${name}`;
      await raw(engine, 'DELETE', `/${index}`);
      const answer = await raw(engine, 'PUT', `/${index}`, body);
      expect(answer.status).toBe(200);
      created.push(index);
      return index;
    };

    beforeAll(() => {
      engine = testEngine(engineId);
      sink = buildSink(engine);
    });

    afterAll(async () => {
      for (const index of created) await raw(engine, 'DELETE', `/${index}`);
      await sink.close();
    });

    test('the engine it answers for', () => {
      expect(sink.engine).toEqual({ product: engine.product, version: engine.version });
    });

    test('racing versioned writes: the highest version wins, every lower one is already-newer', async () => {
      const index = await fresh('race', { settings: { number_of_shards: 2 } });
      const random = seededRandom(12);
      const ids = Array.from({ length: 20 }, (_, i) => `id-${i}`);
      const versions = Array.from({ length: 30 }, (_, i) => i + 1);
      const writes = shuffle(
        ids.flatMap((id) => versions.map((v) => indexOp(index, id, v, { id, v }))),
        random,
      );
      // 30 bulks of 20 writes, all in flight at once.
      const bulks = Array.from({ length: 30 }, (_, i) => writes.slice(i * 20, i * 20 + 20));
      const answers = await Promise.all(bulks.map((ops) => sink.bulk(ops)));
      const outcomes = answers.flat();
      const sent = bulks.flat();
      expect(outcomes).toHaveLength(sent.length);
      sent.forEach((op, i) => {
        const outcome = outcomes[i];
        // Nothing above the top version exists, so it must have been written; the rest raced.
        if (op.version === 30) expect(outcome).toEqual(INDEXED);
        else expect([INDEXED, NEWER]).toContainEqual(outcome);
      });
      const docs = await sink.getDocuments(index, ids);
      expect(docs).toEqual(ids.map((id) => ({ id, v: 30 })));
      // Now that the top version is in, every lower one is refused as already newer.
      const again = await Promise.all(bulks.map((ops) => sink.bulk(ops.filter((op) => op.version < 30))));
      for (const outcome of again.flat()) expect(outcome).toEqual(NEWER);
      expect(await sink.count(index)).toBe(ids.length);
    });

    test('deletes and tombstones: a delete at v then an index at v-1 is already-newer', async () => {
      const index = await fresh('tomb');
      await sink.createIndex(`${index}-tool`, indexBody(`${index}-tool`, MAPPING));
      created.push(`${index}-tool`);
      for (const target of [index, `${index}-tool`]) {
        expect(await sink.bulk([indexOp(target, 'a', 5, { v: 5 })])).toEqual([INDEXED]);
        expect(await sink.bulk([deleteOp(target, 'a', 7)])).toEqual([{ kind: 'done', result: 'deleted' }]);
        expect(await sink.bulk([indexOp(target, 'a', 6, { v: 6 })])).toEqual([NEWER]);
        expect(await sink.bulk([deleteOp(target, 'a', 6)])).toEqual([NEWER]);
        expect(await sink.getDocuments(target, ['a'])).toEqual([undefined]);
        // A later write after the delete is a new life of the document.
        expect(await sink.bulk([indexOp(target, 'a', 8, { v: 8 })])).toEqual([INDEXED]);
        expect(await sink.getDocuments(target, ['a'])).toEqual([{ v: 8 }]);
        expect(await sink.bulk([deleteOp(target, 'never-there', 3)])).toEqual([
          { kind: 'done', result: 'already-absent' },
        ]);
      }
    });

    test('index.gc_deletes is honoured: tombstones outlive it only as long as it says', async () => {
      // With gc_deletes 0 a tombstone is pruned at the next refresh, and the stale write gets in:
      // the setting, not luck, is what keeps the delete in the default index.
      const short = await fresh('gc0', { settings: { number_of_shards: 1, 'index.gc_deletes': '0ms' } });
      expect(await sink.bulk([indexOp(short, 'a', 5, { v: 5 })])).toEqual([INDEXED]);
      expect(await sink.bulk([deleteOp(short, 'a', 7)])).toEqual([{ kind: 'done', result: 'deleted' }]);
      // The engine prunes tombstones past gc_deletes at a refresh, on its own coarse clock (a
      // cached time, refreshed every 200 ms or so): until then the stale write is still refused,
      // which changes nothing, so it is simply tried again.
      let outcome: ItemOutcome[] = [];
      for (let attempt = 0; attempt < 60; attempt++) {
        await new Promise((r) => setTimeout(r, 250));
        await sink.refresh(short);
        outcome = await sink.bulk([indexOp(short, 'a', 6, { v: 6 })]);
        if (outcome[0]?.kind === 'done' && outcome[0].result === 'indexed') break;
      }
      expect(outcome).toEqual([INDEXED]);
    });

    test('refusal reasons: a mapping conflict is rejected with the engine’s reason', async () => {
      const index = await fresh('refuse', { mappings: { properties: { n: { type: 'integer' } } } });
      const [outcome] = await sink.bulk([indexOp(index, 'x', 1, { n: 'not a number' })]);
      expect(outcome).toMatchObject({ kind: 'rejected' });
      const reason = outcome?.kind === 'rejected' ? outcome.reason : '';
      expect(reason).toMatch(/^400 (mapper_parsing_exception|document_parsing_exception): /);
      expect(reason).toContain('[n]');
      expect(reason).toMatch(/caused by number_format_exception/);
    });

    test('bulk partial failure: each item gets its own outcome', async () => {
      const index = await fresh('partial', { mappings: { properties: { n: { type: 'integer' } } } });
      expect(await sink.bulk([indexOp(index, 'old', 10, { n: 10 })])).toEqual([INDEXED]);
      const outcomes = await sink.bulk([
        indexOp(index, 'good-1', 1, { n: 1 }),
        indexOp(index, 'bad', 1, { n: 'nan' }),
        indexOp(index, 'old', 9, { n: 9 }),
        deleteOp(index, 'absent', 1),
        deleteOp(index, 'old', 11),
        indexOp(index, 'good-2', 1, { n: 2 }),
      ]);
      expect(outcomes).toEqual([
        INDEXED,
        expect.objectContaining({ kind: 'rejected' }) as ItemOutcome,
        NEWER,
        { kind: 'done', result: 'already-absent' },
        { kind: 'done', result: 'deleted' },
        INDEXED,
      ]);
      expect(await sink.getDocuments(index, ['good-1', 'bad', 'old', 'good-2'])).toEqual([
        { n: 1 },
        undefined,
        undefined,
        { n: 2 },
      ]);
      expect(await sink.bulk([])).toEqual([]);
    });

    test('outage and recovery: a frozen engine fails the bulk as transient; the same bulk then succeeds', async () => {
      const index = await fresh('outage');
      const ops = [indexOp(index, 'o-1', 1, { v: 1 }), indexOp(index, 'o-2', 1, { v: 2 })];
      const impatient = buildSink(engine, { requestTimeoutMs: OUTAGE_TIMEOUT_MS });
      await impatient.health(REQUEST_TIMEOUT_MS);
      engine.pause();
      let failure: unknown;
      try {
        failure = await impatient.bulk(ops).then(
          () => undefined,
          (err: unknown) => err,
        );
        await expect(impatient.health(500)).rejects.toThrow();
      } finally {
        engine.resume();
      }
      expect(failure).toBeInstanceOf(Error);
      expect(impatient.isTransient(failure)).toBe(true);
      const told = impatient.dependencyError(failure, { timeoutMs: OUTAGE_TIMEOUT_MS, tried: 'POST /_bulk' });
      expect(told.code).toBe('ES_TIMEOUT');
      expect(told.message).toContain('POST /_bulk');
      expect(impatient.describeError(failure)).toMatch(/Timeout/);
      // The bulk may have been applied while its answer was lost: resending it is safe either way.
      const outcomes = await impatient.bulk(ops);
      await impatient.close();
      for (const outcome of outcomes) expect([INDEXED, NEWER]).toContainEqual(outcome);
      expect(await sink.getDocuments(index, ['o-1', 'o-2'])).toEqual([{ v: 1 }, { v: 2 }]);
      await sink.health(REQUEST_TIMEOUT_MS);
    });

    test('scan of a large index: 25,000 documents in pages of 1,000, every id exactly once', async () => {
      const index = await fresh('scan', { settings: { number_of_shards: 3 } });
      const total = 25000;
      for (let start = 0; start < total; start += 5000) {
        let lines = '';
        for (let i = start; i < start + 5000; i++)
          lines += `${JSON.stringify({ index: { _index: index, _id: `doc-${i}` } })}\n${JSON.stringify({ key: `k${i}`, db: 0, other: i })}\n`;
        const answer = await raw(engine, 'POST', '/_bulk', lines);
        expect(answer.status).toBe(200);
        expect((answer.body as { errors: boolean }).errors).toBe(false);
      }
      // No refresh here: the scan must see what was indexed before it was called.
      const seen = new Map<string, number>();
      const pageSizes: number[] = [];
      const wrong: ScannedDoc[] = [];
      for await (const page of sink.scan(index, { pageSize: 1000 })) {
        pageSizes.push(page.length);
        for (const doc of page) {
          seen.set(doc.id, (seen.get(doc.id) ?? 0) + 1);
          // Collected, then asserted once: 25,000 expect() calls would cost more than the scan.
          const n = doc.id.slice(4);
          if (doc.index !== index || doc.source.key !== `k${n}` || doc.source.db !== 0 || 'other' in doc.source)
            wrong.push(doc);
        }
      }
      expect(wrong).toEqual([]);
      expect(seen.size).toBe(total);
      expect([...seen.values()].filter((n) => n !== 1)).toEqual([]);
      expect(Math.max(...pageSizes)).toBe(1000);
      expect(pageSizes.length).toBeGreaterThanOrEqual(total / 1000);
      const whole = sink.scan(index, { pageSize: 10, sourceFields: true });
      const first = await whole.next();
      await whole.return(undefined);
      const firstPage: ScannedDoc[] = first.done === true ? [] : first.value;
      expect(firstPage[0]?.source).toHaveProperty('other');
      const none: unknown[] = [];
      for await (const page of sink.scan(`${prefix}-no-such-index`)) none.push(page);
      expect(none).toEqual([]);
    });

    test('index creation with the tool’s settings: gc_deletes and the default mapping read back', async () => {
      const index = `${prefix}-created`;
      await raw(engine, 'DELETE', `/${index}`);
      created.push(index);
      const body = indexBody(index, { ...MAPPING, defaultIndex: index });
      expect(await sink.indexExists(index)).toBe(false);
      const race = await Promise.all([sink.createIndex(index, body), sink.createIndex(index, body)]);
      expect(race.sort()).toEqual(['created', 'exists']);
      expect(await sink.createIndex(index, body)).toBe('exists');
      expect(await sink.indexExists(index)).toBe(true);
      const settings = await raw(engine, 'GET', `/${index}/_settings?flat_settings=true`);
      const flat = (settings.body as Record<string, { settings: Record<string, string> }>)[index]?.settings;
      expect(flat?.['index.gc_deletes']).toBe(body.settings['index.gc_deletes']);
      const mapping = await raw(engine, 'GET', `/${index}/_mapping`);
      const mappings = (mapping.body as Record<string, { mappings: Record<string, unknown> }>)[index]?.mappings;
      expect(mappings).toMatchObject({
        dynamic: 'false',
        properties: {
          key: { type: 'keyword', ignore_above: 8191 },
          value: { type: 'object', enabled: false },
          content: { type: 'text' },
        },
      });
    });

    test('aliases: created behind one, resolved, swapped atomically (from an index too), deleted', async () => {
      const name = `${prefix}-alias`;
      const [g1, g2, g3] = [`${name}-g1`, `${name}-g2`, `${name}-g3`];
      for (const index of [name, g1, g2, g3]) await raw(engine, 'DELETE', `/${index}`);
      created.push(g1, g2, g3);
      const body = indexBody(name, MAPPING);
      expect(await sink.resolveIndex(name)).toEqual({ kind: 'missing' });
      expect(await sink.createIndex(g1, body, { alias: name })).toBe('created');
      expect(await sink.resolveIndex(name)).toEqual({ kind: 'alias', indices: [g1] });
      expect(await sink.resolveIndex(g1)).toEqual({ kind: 'index' });
      // Writes, reads, counts and scans through the alias reach its index.
      expect(await sink.bulk([indexOp(name, 'a', 3, { key: 'a', db: 0 })])).toEqual([INDEXED]);
      expect(await sink.getDocuments(name, ['a'])).toEqual([{ key: 'a', db: 0 }]);
      expect(await sink.count(name)).toBe(1);
      const scanned: string[] = [];
      for await (const page of sink.scan(name)) scanned.push(...page.map((d) => d.id));
      expect(scanned).toEqual(['a']);
      // The same write at the same version in the next generation, then the swap.
      await sink.createIndex(g2, body);
      expect(await sink.bulk([indexOp(g2, 'a', 3, { key: 'a', db: 0, v: 2 })])).toEqual([INDEXED]);
      expect(await sink.bulk([indexOp(name, 'a', 3, { key: 'a', db: 0 })])).toEqual([NEWER]);
      await sink.updateAliases([{ add: { index: g2, alias: name } }, { remove: { index: g1, alias: name } }]);
      expect(await sink.resolveIndex(name)).toEqual({ kind: 'alias', indices: [g2] });
      expect(await sink.getDocuments(name, ['a'])).toEqual([{ key: 'a', db: 0, v: 2 }]);
      expect(await sink.deleteIndex(g1)).toBe('deleted');
      expect(await sink.deleteIndex(g1)).toBe('absent');
      expect(await sink.resolveIndex(g1)).toEqual({ kind: 'missing' });
      // A concrete index under a name becomes an alias in one request that also deletes it.
      const concrete = `${prefix}-concrete`;
      await raw(engine, 'DELETE', `/${concrete}`);
      await sink.createIndex(concrete, body);
      await sink.createIndex(g3, body);
      expect(await sink.resolveIndex(concrete)).toEqual({ kind: 'index' });
      await sink.updateAliases([{ add: { index: g3, alias: concrete } }, { removeIndex: { index: concrete } }]);
      expect(await sink.resolveIndex(concrete)).toEqual({ kind: 'alias', indices: [g3] });
      await sink.updateAliases([{ remove: { index: g3, alias: concrete } }]);
    });

    test('getDocuments, count and health', async () => {
      const index = await fresh('get');
      await sink.bulk([indexOp(index, 'a', 1, { a: 1 }), indexOp(index, 'b', 1, { b: 'β' })]);
      expect(await sink.getDocuments(index, ['b', 'missing', 'a'])).toEqual([{ b: 'β' }, undefined, { a: 1 }]);
      expect(await sink.getDocuments(index, [])).toEqual([]);
      expect(await sink.getDocuments(`${prefix}-no-such-index`, ['a'])).toEqual([undefined]);
      expect(await sink.count(index)).toBe(2);
      expect(await sink.count(`${prefix}-no-such-index`)).toBe(0);
      await expect(sink.health(REQUEST_TIMEOUT_MS)).resolves.toBeUndefined();
    });

    describe('dependencyError: what an operator is told', () => {
      const failure = async (url: string): Promise<{ code: string; message: string; transient: boolean }> => {
        const other = buildSink({ ...engine, url }, {});
        try {
          await other.health(2000);
          throw new Error(`health of ${url} succeeded`);
        } catch (err) {
          const e = other.dependencyError(err, { timeoutMs: 2000 });
          return { code: e.code, message: e.message, transient: other.isTransient(err) };
        } finally {
          await other.close();
        }
      };

      test('a port nothing listens on', async () => {
        const port = await getFreePort();
        const e = await failure(`http://127.0.0.1:${port}`);
        expect(e).toMatchObject({ code: 'ES_UNREACHABLE', transient: true });
        expect(e.message).toContain(`127.0.0.1:${port}`);
      });

      test('an HTTP server that is not a search engine', async () => {
        const server = createHttpServer((_req, res) => {
          res.writeHead(404, { 'content-type': 'text/plain' });
          res.end('nothing here\n');
        });
        const port = await listen(server);
        try {
          const e = await failure(`http://127.0.0.1:${port}`);
          expect(e.code).toBe('ES_PROTOCOL');
          expect(e.message).toContain('nothing here');
        } finally {
          server.close();
        }
      });

      test('a TCP port that closes without answering', async () => {
        const server = createTcpServer((socket) => socket.destroy());
        const port = await listen(server);
        try {
          expect((await failure(`http://127.0.0.1:${port}`)).code).toBe('ES_PROTOCOL');
        } finally {
          server.close();
        }
      });

      test('https against a plain-HTTP engine', async () => {
        const e = await failure(engine.url.replace(/^http:/, 'https:'));
        expect(e.code).toBe('ES_TLS');
      });
    });
  });
}

const MAPPING: AppConfig['mapping'] = { defaultIndex: 'redis', unmatched: 'index', rules: [], indices: {} };
