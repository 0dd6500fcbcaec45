import { bulkBody, bulkRequestBody } from '../../../../shared/sink/bulk-body';

describe('bulkBody', () => {
  const ids = ['plain', 'with "quotes" and \\ backslash', 'línea\nnueva \u2028 😀', 'sha256:ab'];

  test.each(ids)('writes the action line JSON.stringify would write for id %j', (id) => {
    const meta = { _index: 'idx-ü', _id: id, version: 12345678901, version_type: 'external' };
    const index = bulkBody({ op: 'index', index: 'idx-ü', id, doc: { key: id, db: 0, type: 'string' } }, 12345678901);
    expect(index.body).toBe(
      `${JSON.stringify({ index: meta })}\n${JSON.stringify({ key: id, db: 0, type: 'string' })}`,
    );
    expect(index.bytes).toBe(Buffer.byteLength(index.body));
    const del = bulkBody({ op: 'delete', index: 'idx-ü', id }, 12345678901);
    expect(del.body).toBe(JSON.stringify({ delete: meta }));
    expect(del.bytes).toBe(Buffer.byteLength(del.body));
  });

  test('the request body is every operation’s lines, each ending in a newline, as UTF-8', () => {
    const ops = ids.map((id, i) =>
      i % 2
        ? bulkBody({ op: 'delete', index: 'i', id }, i + 1)
        : bulkBody({ op: 'index', index: 'i', id, doc: { key: id, db: 0, type: 'hash', value: { ñ: '😀' } } }, i + 1),
    );
    const body = bulkRequestBody(ops);
    expect(body.toString('utf8')).toBe(ops.map((o) => `${o.body}\n`).join(''));
    expect(body.length).toBe(Buffer.byteLength(ops.map((o) => `${o.body}\n`).join('')));
    expect(bulkRequestBody([]).length).toBe(0);
  });
});
