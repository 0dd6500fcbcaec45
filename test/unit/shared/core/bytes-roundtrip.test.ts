import fc from 'fast-check';
import { keyFromBytes } from '../../../../shared/core/bytes';
import { decodeReply, type RawReply } from '../../../support/read-reply';
import {
  buildDocument,
  compareCodePoints,
  documentId,
  MAX_ID_BYTES,
  type DocumentShape,
} from '../../../../shared/core/mapping/document';
import { compareDocument, type PresentRaw } from '../../../../features/maintenance/verify/doc-compare';
import type { RawPair } from '../../../../features/maintenance/verify/raw-read';

/**
 * Arbitrary bytes of every type through the real mapping, then decoded back by verify's own
 * decoder (which shares no code with the mapping): the bytes must come back exactly. And one
 * state, whatever order Redis happened to reply in, gives one document.
 */

const awkward = [
  '',
  '__proto__',
  'constructor',
  '$base64',
  '{"$base64":"AA=="}',
  '10',
  '2',
  'é',
  '\u0000',
  '{"a":1}',
  '{"a":1.0}',
  '{"n":12345678901234567890}',
  '[1,2]',
  '"s"',
  '{"a":1,"a":2}',
];

const bytes: fc.Arbitrary<Buffer> = fc.oneof(
  fc.uint8Array({ maxLength: 12 }).map((a) => Buffer.from(a)),
  fc.string({ unit: 'grapheme', maxLength: 8 }).map((s) => Buffer.from(s, 'utf8')),
  fc.constantFrom(...awkward).map((s) => Buffer.from(s, 'utf8')),
  // A multi-byte character cut in two, as SETRANGE or APPEND can leave it.
  fc.constantFrom(Buffer.from([0x68, 0xc3]), Buffer.from([0xa9, 0x68]), Buffer.from([0xf0, 0x9f, 0x98])),
);

const jsonText: fc.Arbitrary<Buffer> = fc.oneof(
  fc.json({ maxDepth: 3 }).map((t) => Buffer.from(t, 'utf8')),
  fc.jsonValue({ maxDepth: 2 }).map((v) => Buffer.from(JSON.stringify({ v }, null, 1), 'utf8')),
  fc.bigInt({ min: -(2n ** 70n), max: 2n ** 70n }).map((n) => Buffer.from(`{"id":${n},"x":[${n}]}`, 'utf8')),
);

const hex = (b: Buffer): string => b.toString('hex');
const uniqueBytes = (max: number): fc.Arbitrary<Buffer[]> => fc.uniqueArray(bytes, { maxLength: max, selector: hex });
// Names from a small pool too, so stream entries often repeat one.
const pairs = (max: number): fc.Arbitrary<RawPair[]> =>
  fc.array(fc.tuple(fc.oneof(bytes, fc.constantFrom(Buffer.from('a'), Buffer.from('1'))), bytes), { maxLength: max });

/** Scores as Redis prints them: 17 significant digits, `inf`, `-inf`. */
const score: fc.Arbitrary<string> = fc.oneof(
  fc
    .double({ noNaN: true, noDefaultInfinity: true })
    .map((d) => (Object.is(d, -0) ? '-0' : String(Number(d.toPrecision(17))))),
  fc.constantFrom('inf', '-inf', '0', '-0', '1.1000000000000001', '1e+300'),
);

interface Case {
  raw: PresentRaw;
  reply: RawReply;
}

const ttl = fc.option(fc.integer({ min: 0, max: 1e9 }), { nil: undefined });
const reply = (type: string, t: number | undefined, v: unknown): RawReply => [Buffer.from(type), t ?? -1, v];
const flat = (ps: readonly RawPair[]): Buffer[] => ps.flatMap(([n, v]) => [n, v]);

const cases: fc.Arbitrary<Case> = fc.oneof(
  fc.tuple(fc.oneof(bytes, jsonText), ttl).map(([v, t]): Case => ({
    raw: { exists: true, hasTtl: t !== undefined, type: 'string', bytes: v },
    reply: reply('string', t, v),
  })),
  fc
    .tuple(fc.uniqueArray(fc.tuple(bytes, bytes), { maxLength: 8, selector: ([n]) => hex(n) }), ttl)
    .map(([ps, t]): Case => ({
      raw: { exists: true, hasTtl: t !== undefined, type: 'hash', pairs: ps },
      reply: reply('hash', t, flat(ps)),
    })),
  fc.tuple(fc.array(bytes, { maxLength: 8 }), ttl).map(([items, t]): Case => ({
    raw: { exists: true, hasTtl: t !== undefined, type: 'list', items },
    reply: reply('list', t, items),
  })),
  fc.tuple(uniqueBytes(8), ttl).map(([items, t]): Case => ({
    raw: { exists: true, hasTtl: t !== undefined, type: 'set', items },
    reply: reply('set', t, items),
  })),
  fc
    .tuple(fc.uniqueArray(fc.tuple(bytes, score), { maxLength: 8, selector: ([m]) => hex(m) }), ttl)
    .map(([es, t]): Case => ({
      raw: { exists: true, hasTtl: t !== undefined, type: 'zset', entries: es },
      reply: reply(
        'zset',
        t,
        es.flatMap(([m, s]) => [m, Buffer.from(s)]),
      ),
    })),
  fc.tuple(fc.array(pairs(4), { maxLength: 4 }), ttl).map(([entries, t]): Case => {
    const withIds = entries.map((fields, i) => ({ id: `${i + 1}-${i}`, fields }));
    return {
      raw: { exists: true, hasTtl: t !== undefined, type: 'stream', entries: withIds },
      reply: reply(
        'stream',
        t,
        withIds.map((e) => [Buffer.from(e.id), flat(e.fields)]),
      ),
    };
  }),
);

const shapes: DocumentShape[] = [{ json: 'auto', searchText: true }, { json: false }, { json: 'auto' }];

function build(shape: DocumentShape, keyBytes: Buffer, r: RawReply): unknown {
  const state = decodeReply(r);
  if (!state.exists) throw new Error('decoded as absent');
  // What Elasticsearch stores and gives back: the JSON text of the document.
  return JSON.parse(JSON.stringify(buildDocument(shape, 3, keyFromBytes(keyBytes), state)));
}

/** The same state as Redis might reply with another time: hash fields and set members reordered. */
function reordered(r: RawReply, seed: number): RawReply {
  const [type, t, v] = r;
  const rotate = <T>(xs: T[]): T[] =>
    xs.length === 0 ? xs : [...xs.slice(seed % xs.length), ...xs.slice(0, seed % xs.length)];
  if (type.toString() === 'set') return [type, t, rotate(v as Buffer[])];
  if (type.toString() === 'hash') {
    const ps = v as Buffer[];
    const byPair = Array.from({ length: ps.length / 2 }, (_, i) => [ps[2 * i]!, ps[2 * i + 1]!]);
    return [type, t, rotate(byPair).flat()];
  }
  return r;
}

describe('documents decode back to the exact bytes (property)', () => {
  it.each(shapes.map((s) => [JSON.stringify(s), s] as const))('for every type under %s', (_name, shape) => {
    fc.assert(
      fc.property(bytes, cases, (key, c) => {
        const doc = build(shape, key, c.reply) as Record<string, unknown>;
        const result = compareDocument(key, 3, c.raw, doc, shape.json !== false);
        if (!('same' in result) || !result.same)
          throw new Error(`not the same: ${JSON.stringify(result)}; doc ${JSON.stringify(doc)}`);
      }),
      { numRuns: 1500 },
    );
  });

  it('gives one document per state, whatever order Redis replies in', () => {
    fc.assert(
      fc.property(bytes, cases, fc.nat(), (key, c, seed) => {
        const shape = shapes[0]!;
        expect(JSON.stringify(build(shape, key, reordered(c.reply, seed)))).toBe(
          JSON.stringify(build(shape, key, c.reply)),
        );
      }),
      { numRuns: 1000 },
    );
  });

  it('gives every key an _id Elasticsearch accepts, stable and distinct for distinct keys', () => {
    fc.assert(
      fc.property(bytes, bytes, (a, b) => {
        const [ia, ib] = [documentId(keyFromBytes(a)), documentId(keyFromBytes(b))];
        expect(ia.length).toBeGreaterThan(0);
        expect(Buffer.byteLength(ia)).toBeLessThanOrEqual(MAX_ID_BYTES);
        expect(ia).toBe(documentId(keyFromBytes(Buffer.from(a))));
        if (!a.equals(b)) expect(ia).not.toBe(ib);
      }),
      { numRuns: 2000 },
    );
  });

  it('orders text exactly as its UTF-8 bytes order', () => {
    const text = fc.string({
      unit: fc.oneof(
        fc.constantFrom('a', '\uE000', '\uFFFF', '\uD7FF', '😀', '\u{10FFFF}'),
        fc.string({ unit: 'grapheme', maxLength: 1 }),
      ),
      maxLength: 6,
    });
    fc.assert(
      fc.property(text, text, (a, b) => {
        expect(Math.sign(compareCodePoints(a, b))).toBe(
          Math.sign(Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'))),
        );
      }),
      { numRuns: 5000 },
    );
  });
});
