import { DocumentRejectedError } from '../../../../../shared/platform/errors';
import type { KeyState } from '../../../../../shared/core/key-state';
import { decodeReply, type RawReply } from '../../../../support/read-reply';
import {
  buildDocument,
  coerce,
  documentId,
  MAX_CONTENT_CHARS,
  MAX_ID_BYTES,
  toOperation,
  type DocumentShape,
  type SyncDocument,
} from '../../../../../shared/core/mapping/document';

type Present = Exclude<KeyState, { exists: false }>;

const AUTO: DocumentShape = { json: 'auto' };
const target = { index: 'idx', id: 'the-id' };

type TextReply = [string, number?, unknown?];

/** A reply written as text, turned into the bytes the read script answers with. */
function asBytes(v: unknown): unknown {
  if (typeof v === 'string') return Buffer.from(v, 'utf8');
  return Array.isArray(v) ? v.map(asBytes) : v;
}

function reply(r: TextReply): RawReply {
  return asBytes(r) as RawReply;
}

/** Decodes a reply shaped like the Lua read script's and insists the key exists. */
function present(r: TextReply): Present {
  const state = decodeReply(reply(r));
  if (!state.exists) throw new Error('expected an existing key');
  return state;
}

function str(value: string | Buffer, ttlMs?: number): Present {
  const bytes = typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
  return ttlMs === undefined
    ? { exists: true, type: 'string', value: bytes }
    : { exists: true, type: 'string', value: bytes, ttlMs };
}

function hash(value: Record<string, string>): Present {
  return {
    exists: true,
    type: 'hash',
    value: Object.entries(value).map(([n, v]) => ({ name: Buffer.from(n), value: Buffer.from(v) })),
  };
}

function build(shape: DocumentShape, state: Present, key = 'k', db = 0): SyncDocument | null {
  return buildDocument(shape, db, key, state);
}

describe('strings', () => {
  it('keeps a plain string as is', () => {
    expect(build(AUTO, str('hello world'), 'greeting', 3)).toEqual({
      key: 'greeting',
      db: 3,
      type: 'string',
      value: 'hello world',
    });
  });

  it("parses a JSON object under json: 'auto'", () => {
    const doc = build(AUTO, str(' {"name":"Ada","age":36,"tags":["x"]}'));
    expect(doc?.value).toEqual({ name: 'Ada', age: 36, tags: ['x'] });
  });

  it("does not parse a JSON array, number or invalid object under json: 'auto'", () => {
    expect(build(AUTO, str('[1,2,3]'))?.value).toBe('[1,2,3]');
    expect(build(AUTO, str('42'))?.value).toBe('42');
    expect(build(AUTO, str('{not json'))?.value).toBe('{not json');
  });

  it('parses any JSON under json: true', () => {
    const shape: DocumentShape = { json: true };
    expect(build(shape, str('[1,"two",{"three":3}]'))?.value).toEqual([1, 'two', { three: 3 }]);
    expect(build(shape, str('42'))?.value).toBe(42);
    expect(build(shape, str('"quoted"'))?.value).toBe('quoted');
    expect(build(shape, str('{"a":{"b":null}}'))?.value).toEqual({ a: { b: null } });
  });

  it('rejects invalid JSON under json: true', () => {
    expect(() => build({ json: true }, str('{oops'))).toThrow(DocumentRejectedError);
    expect(() => build({ json: true }, str('plain text'))).toThrow(/not valid JSON/);
  });

  it('keeps the raw string under json: false', () => {
    expect(build({ json: false }, str('{"a":1}'))?.value).toBe('{"a":1}');
  });
});

describe('collection types (decoded from the read script reply)', () => {
  it('hash becomes an object', () => {
    const doc = build(AUTO, present(['hash', -1, ['name', 'Ada', 'lang', 'en']]), 'user:1');
    expect(doc).toEqual({ key: 'user:1', db: 0, type: 'hash', value: { name: 'Ada', lang: 'en' } });
  });

  it('list becomes an array in list order', () => {
    const doc = build(AUTO, present(['list', -1, ['c', 'a', 'b', 'a']]));
    expect(doc?.type).toBe('list');
    expect(doc?.value).toEqual(['c', 'a', 'b', 'a']);
  });

  it('set becomes a sorted array (byte order, whatever order Redis answered in)', () => {
    const doc = build(AUTO, present(['set', -1, ['pear', 'Apple', 'banana', 'apple']]));
    expect(doc?.type).toBe('set');
    expect(doc?.value).toEqual(['Apple', 'apple', 'banana', 'pear']);
  });

  it('zset becomes [{member, score}] in the given order, infinities and -0 as Redis prints them', () => {
    const doc = build(
      AUTO,
      present(['zset', -1, ['low', '-inf', 'mid', '1.5', 'high', 'inf', 'plus', '+inf', 'neg', '-2', 'nz', '-0']]),
    );
    expect(doc?.type).toBe('zset');
    expect(doc?.value).toEqual([
      { member: 'low', score: '-inf' },
      { member: 'mid', score: 1.5 },
      { member: 'high', score: 'inf' },
      { member: 'plus', score: 'inf' },
      { member: 'neg', score: -2 },
      { member: 'nz', score: '-0' },
    ]);
    // JSON has no infinities: the document must survive a JSON round trip unchanged.
    expect(JSON.parse(JSON.stringify(doc))).toEqual(doc);
  });

  it('stream becomes [{id, fields}]', () => {
    const doc = build(
      AUTO,
      present([
        'stream',
        -1,
        [
          ['1700000000000-0', ['event', 'login', 'user', 'ada']],
          ['1700000000001-0', ['event', 'logout']],
        ],
      ]),
    );
    expect(doc?.type).toBe('stream');
    expect(doc?.value).toEqual([
      { id: '1700000000000-0', fields: { event: 'login', user: 'ada' } },
      { id: '1700000000001-0', fields: { event: 'logout' } },
    ]);
  });

  it('an unsupported type keeps its Redis type name and no value', () => {
    const doc = build(AUTO, present(['ReJSON-RL', -1]));
    expect(doc).toEqual({ key: 'k', db: 0, type: 'ReJSON-RL' });
  });
});

describe('ttl_ms', () => {
  it('is present only when the key has a TTL', () => {
    expect(build(AUTO, present(['string', 5000, 'x']))?.ttl_ms).toBe(5000);
    const noTtl = build(AUTO, present(['string', -1, 'x']));
    expect(noTtl).not.toHaveProperty('ttl_ms');
    expect(build(AUTO, str('x', 0))?.ttl_ms).toBe(0);
  });
});

describe('toOperation', () => {
  it('a missing key becomes a delete of the routed document', () => {
    expect(toOperation(target, AUTO, 0, 'gone', decodeReply(reply(['none'])))).toEqual({
      op: 'delete',
      index: 'idx',
      id: 'the-id',
    });
    expect(toOperation(target, AUTO, 0, 'gone', { exists: false })).toEqual({
      op: 'delete',
      index: 'idx',
      id: 'the-id',
    });
  });

  it('an existing key becomes an index op carrying the document', () => {
    expect(toOperation(target, AUTO, 2, 'k', str('v'))).toEqual({
      op: 'index',
      index: 'idx',
      id: 'the-id',
      doc: { key: 'k', db: 2, type: 'string', value: 'v' },
    });
  });

  it('a transform returning null turns an existing key into a delete', () => {
    const shape: DocumentShape = { json: 'auto', transform: () => null };
    expect(toOperation(target, shape, 0, 'k', str('v'))).toEqual({ op: 'delete', index: 'idx', id: 'the-id' });
  });
});

describe('fields and coercion', () => {
  const user = hash({
    name: 'Ada',
    age: '36',
    admin: 'yes',
    born: '1815-12-10',
    secret: 'hunter2',
    prefs: '{"theme":"dark"}',
  });

  it('keep drops every other field', () => {
    expect(build({ json: 'auto', keep: ['name', 'age', 'missing'] }, user)?.value).toEqual({ name: 'Ada', age: '36' });
  });

  it('rename renames fields and leaves the rest', () => {
    expect(build({ json: 'auto', keep: ['name', 'age'], rename: { name: 'full_name' } }, user)?.value).toEqual({
      full_name: 'Ada',
      age: '36',
    });
  });

  it('coerce converts by original field name, before rename', () => {
    const shape: DocumentShape = {
      json: 'auto',
      coerce: { age: 'integer', admin: 'boolean', born: 'date', prefs: 'json', absent: 'number' },
      rename: { age: 'age_years' },
    };
    expect(build(shape, user)?.value).toEqual({
      name: 'Ada',
      age_years: 36,
      admin: true,
      born: '1815-12-10T00:00:00.000Z',
      secret: 'hunter2',
      prefs: { theme: 'dark' },
    });
  });

  it('applies to JSON objects parsed from strings as well', () => {
    const doc = build({ json: 'auto', coerce: { price: 'number' }, keep: ['price'] }, str('{"price":"9.50","x":1}'));
    expect(doc?.value).toEqual({ price: 9.5 });
  });

  it('leaves non-object values alone', () => {
    expect(
      build({ json: 'auto', keep: ['a'], coerce: { a: 'number' } }, present(['list', -1, ['1', '2']]))?.value,
    ).toEqual(['1', '2']);
  });

  it.each([
    ['number', '12.5', 12.5],
    ['number', ' 7 ', 7],
    ['integer', '42', 42],
    ['boolean', 'TRUE', true],
    ['boolean', 'off', false],
    ['boolean', '1', true],
    ['date', '1700000000000', '2023-11-14T22:13:20.000Z'],
    ['date', '2024-02-29T12:00:00Z', '2024-02-29T12:00:00.000Z'],
    ['json', '[1,{"a":2}]', [1, { a: 2 }]],
    ['string', '  spaced ', '  spaced '],
  ] as const)('coerce to %s: %j → %j', (to, input, expected) => {
    expect(coerce('f', input, to)).toEqual(expected);
  });

  it('coerce keeps null as null', () => {
    expect(coerce('f', null, 'number')).toBeNull();
  });

  it.each([
    ['number', 'abc'],
    ['number', ''],
    ['integer', '1.5'],
    ['integer', 'ten'],
    ['boolean', 'maybe'],
    ['date', 'not a date'],
    ['json', '{broken'],
  ] as const)('coerce to %s rejects %j and names the field', (to, input) => {
    const shape: DocumentShape = { json: 'auto', coerce: { the_field: to } };
    let thrown: unknown;
    try {
      build(shape, hash({ the_field: input }));
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(DocumentRejectedError);
    expect((thrown as Error).message).toContain('"the_field"');
    expect((thrown as Error).message).toContain(to);
  });
});

describe('transform', () => {
  it('receives the built document and context, and may change it; key and db are restored', () => {
    const seen: unknown[] = [];
    const shape: DocumentShape = {
      json: 'auto',
      transform: (doc, context) => {
        seen.push({ doc: { ...doc }, context });
        const value = doc.value as Record<string, string>;
        return { ...doc, key: 'tampered', db: 99, greeting: `hello ${value.name}`, value: undefined };
      },
    };
    const doc = build(shape, hash({ name: 'Ada' }), 'user:1', 4);
    expect(seen).toEqual([
      {
        doc: { key: 'user:1', db: 4, type: 'hash', value: { name: 'Ada' } },
        context: { key: 'user:1', db: 4, type: 'hash' },
      },
    ]);
    expect(doc).toEqual({ key: 'user:1', db: 4, type: 'hash', greeting: 'hello Ada', value: undefined });
  });

  it('returning null or undefined means no document', () => {
    expect(build({ json: 'auto', transform: () => null }, str('x'))).toBeNull();
    expect(build({ json: 'auto', transform: () => undefined }, str('x'))).toBeNull();
  });

  it('a throwing transform rejects the document with its message', () => {
    const shape: DocumentShape = {
      json: 'auto',
      transform: () => {
        throw new Error('boom in transform');
      },
    };
    expect(() => build(shape, str('x'))).toThrow(DocumentRejectedError);
    expect(() => build(shape, str('x'))).toThrow(/transform failed: boom in transform/);
  });
});

describe('searchText', () => {
  it('collects every string of the value into content', () => {
    const doc = build({ json: 'auto', searchText: true }, hash({ title: 'Red fish', body: 'Blue fish' }));
    expect(doc?.content).toBe('Blue fish\nRed fish');
  });

  it('walks nested values and stringifies scalars', () => {
    const doc = build({ json: 'auto', searchText: true }, str('{"a":"x","n":[1,{"b":"y"}],"t":true,"z":null}'));
    expect(doc?.content).toBe('x\n1\ny\ntrue');
    const zset = build({ json: 'auto', searchText: true }, present(['zset', -1, ['m', '2']]));
    expect(zset?.content).toBe('m\n2');
  });

  it('is bounded', () => {
    const big = present(['list', -1, Array.from({ length: 3000 }, () => 'x'.repeat(100))]);
    const doc = build({ json: 'auto', searchText: true }, big);
    expect(typeof doc?.content).toBe('string');
    expect((doc?.content as string).length).toBe(MAX_CONTENT_CHARS);
  });

  it('is absent unless asked for', () => {
    expect(build(AUTO, str('x'))).not.toHaveProperty('content');
  });
});

describe('documentId', () => {
  it('keeps ids up to 512 bytes', () => {
    const max = 'k'.repeat(MAX_ID_BYTES);
    expect(documentId(max)).toBe(max);
    expect(documentId('user:1')).toBe('user:1');
    // 256 two-byte characters are exactly 512 bytes.
    const twoByte = 'é'.repeat(256);
    expect(documentId(twoByte)).toBe(twoByte);
  });

  it('hashes longer ids (by bytes, not characters) into a stable prefixed id', () => {
    const long = 'k'.repeat(MAX_ID_BYTES + 1);
    const id = documentId(long);
    expect(id).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(documentId(long)).toBe(id);
    expect(documentId(`${long}x`)).not.toBe(id);
    expect(documentId('é'.repeat(257))).toMatch(/^sha256:[0-9a-f]{64}$/);
  });

  it('the document of a hashed id still carries the full key', () => {
    const key = `session:${'z'.repeat(600)}`;
    const op = toOperation({ index: 'idx', id: documentId(key) }, AUTO, 0, key, str('v'));
    expect(op.op).toBe('index');
    expect(op.id).toMatch(/^sha256:/);
    expect(op.op === 'index' ? op.doc.key : undefined).toBe(key);
  });
});
