import fc from 'fast-check';
import { displayKey, isBinaryKey, keyArg, keyFromBytes, keyToBytes } from '../../../../shared/core/bytes';

describe('escaped keys', () => {
  it('round-trips every byte string exactly, through JSON too', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (arr) => {
        const buf = Buffer.from(arr);
        const key = keyFromBytes(buf);
        expect(keyToBytes(key).equals(buf)).toBe(true);
        const viaJson = JSON.parse(JSON.stringify({ k: key })) as { k: string };
        expect(keyToBytes(viaJson.k).equals(buf)).toBe(true);
      }),
      { numRuns: 2000 },
    );
  });

  it('leaves valid UTF-8 exactly as Node decodes it', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme' }), (s) => {
        const buf = Buffer.from(s, 'utf8');
        expect(keyFromBytes(buf)).toBe(s);
        expect(isBinaryKey(s)).toBe(false);
        expect(keyArg(s)).toBe(s);
      }),
    );
  });

  it('maps distinct byte strings to distinct keys', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 8 }), fc.uint8Array({ maxLength: 8 }), (a, b) => {
        const same = Buffer.from(a).equals(Buffer.from(b));
        expect(keyFromBytes(Buffer.from(a)) === keyFromBytes(Buffer.from(b))).toBe(same);
      }),
      { numRuns: 2000 },
    );
  });

  it('escapes only the bytes that are not UTF-8', () => {
    const buf = Buffer.concat([Buffer.from('user:é'), Buffer.of(0xff, 0xe2, 0x82), Buffer.from('😀')]);
    const key = keyFromBytes(buf);
    expect(isBinaryKey(key)).toBe(true);
    expect(displayKey(key)).toBe('user:é\\xff\\xe2\\x82😀');
    expect(Buffer.isBuffer(keyArg(key))).toBe(true);
    // Encoded surrogates (CESU) are not UTF-8: each byte is escaped.
    expect(keyToBytes(keyFromBytes(Buffer.of(0xed, 0xa0, 0x80))).equals(Buffer.of(0xed, 0xa0, 0x80))).toBe(true);
    expect(isBinaryKey(keyFromBytes(Buffer.of(0xed, 0xa0, 0x80)))).toBe(true);
  });
});
