import { buildSink, raw } from '../../support/sink-conformance';
import { testEngine } from '../../support/engines';

/**
 * Why the OpenSearch adapter pages a point in time by `_shard_doc` on 3.x and by `_id` on 2.x:
 * 2.19 refuses `_shard_doc`, and `_doc` alone repeats its values across shards, so search_after
 * skips documents. Shown on the real servers with raw requests, then the sink's scan on the same index.
 */
describe.each(['opensearch-2', 'opensearch-3'] as const)('point-in-time paging on %s', (id) => {
  const engine = testEngine(id);
  const index = `pit-sort-${id}-${process.pid}`;
  const total = 300;

  beforeAll(async () => {
    await raw(engine, 'DELETE', `/${index}`);
    expect((await raw(engine, 'PUT', `/${index}`, { settings: { number_of_shards: 3 } })).status).toBe(200);
    let lines = '';
    for (let i = 0; i < total; i++)
      lines += `${JSON.stringify({ index: { _index: index, _id: `d${i}` } })}\n{"n":${i}}\n`;
    expect((await raw(engine, 'POST', '/_bulk?refresh=true', lines)).status).toBe(200);
  });

  afterAll(async () => {
    await raw(engine, 'DELETE', `/${index}`);
  });

  /** Every id a PIT walk with this sort sees, or the engine's error. */
  const walk = async (sort: unknown): Promise<string[] | { status: number; error: string }> => {
    const pit = await raw(engine, 'POST', `/${index}/_search/point_in_time?keep_alive=1m`);
    const pitId = (pit.body as { pit_id: string }).pit_id;
    const seen: string[] = [];
    let after: unknown;
    try {
      for (;;) {
        const page = await raw(engine, 'POST', '/_search', {
          size: 7,
          pit: { id: pitId, keep_alive: '1m' },
          sort: [sort],
          _source: false,
          ...(after === undefined ? {} : { search_after: after }),
        });
        if (page.status !== 200) return { status: page.status, error: JSON.stringify(page.body) };
        const hits = (page.body as { hits: { hits: { _id: string; sort: unknown }[] } }).hits.hits;
        const last = hits.at(-1);
        if (last === undefined) return seen;
        seen.push(...hits.map((h) => h._id));
        after = last.sort;
      }
    } finally {
      await raw(engine, 'DELETE', '/_search/point_in_time', { pit_id: [pitId] });
    }
  };

  test('`_doc` alone skips documents of a multi-shard index', async () => {
    const seen = await walk({ _doc: 'asc' });
    expect(Array.isArray(seen)).toBe(true);
    expect((seen as string[]).length).toBeLessThan(total);
  });

  test('`_shard_doc` is refused by 2.x and walks every document on 3.x', async () => {
    const seen = await walk({ _shard_doc: 'asc' });
    if (engine.version.startsWith('2.')) {
      expect(seen).toMatchObject({
        status: 400,
        error: expect.stringContaining('No mapping found for [_shard_doc]') as string,
      });
    } else {
      expect(new Set(seen as string[]).size).toBe(total);
      expect(seen).toHaveLength(total);
    }
  });

  test("the sink's scan sees every document exactly once", async () => {
    const sink = buildSink(engine);
    const ids: string[] = [];
    for await (const page of sink.scan(index, { pageSize: 7 })) ids.push(...page.map((d) => d.id));
    await sink.close();
    expect(ids).toHaveLength(total);
    expect(new Set(ids).size).toBe(total);
  });
});
