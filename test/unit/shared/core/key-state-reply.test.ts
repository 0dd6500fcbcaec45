import { decodeKeyStates } from '../../../../shared/core/key-state';
import { packReply } from '../../../support/read-reply';

const b = (s: string): Buffer => Buffer.from(s, 'utf8');

describe("decodeKeyStates (the read script's packed reply)", () => {
  const records = Buffer.concat([
    packReply([b('none')]),
    packReply([b('string'), 1234, Buffer.from([0x00, 0xff])]),
    packReply([b('hash'), -1, [b('f'), b('')]]),
    packReply([b('ReJSON-RL'), -1, null]),
  ]);

  it('decodes several keys in order, TTL only when set, a type it does not read by name; ASCII items as text', () => {
    expect(decodeKeyStates(records, 4)).toEqual([
      { exists: false },
      { exists: true, type: 'string', value: Buffer.from([0x00, 0xff]), ttlMs: 1234 },
      { exists: true, type: 'hash', value: [{ name: 'f', value: '' }] },
      { exists: true, type: 'unsupported', redisType: 'ReJSON-RL' },
    ]);
  });

  it('hands over the items of a key holding any byte past ASCII as bytes, all of them', () => {
    const mixed = packReply([b('list'), -1, [b('plain'), b('é'), Buffer.from([0x80])]]);
    expect(decodeKeyStates(mixed, 1)).toEqual([
      { exists: true, type: 'list', value: [b('plain'), b('é'), Buffer.from([0x80])] },
    ]);
    const [stream] = decodeKeyStates(
      packReply([
        b('stream'),
        -1,
        [
          [b('1-1'), [b('f'), b('v')]],
          [b('2-0'), []],
        ],
      ]),
      1,
    );
    expect(stream).toEqual({
      exists: true,
      type: 'stream',
      value: [
        { id: '1-1', fields: [{ name: 'f', value: 'v' }] },
        { id: '2-0', fields: [] },
      ],
    });
  });

  it('decodes a collection of more items than its shared offsets array holds, and the next key after it', () => {
    const items = Array.from({ length: 5000 }, (_, i) => b(`i${i}`));
    const reply = Buffer.concat([packReply([b('list'), -1, items]), packReply([b('string'), -1, b('after')])]);
    expect(decodeKeyStates(reply, 2)).toEqual([
      { exists: true, type: 'list', value: items.map((i) => i.toString()) },
      { exists: true, type: 'string', value: 'after' },
    ]);
  });

  it('refuses a reply that holds fewer or more keys than asked, or is cut short', () => {
    expect(() => decodeKeyStates(records, 5)).toThrow(/ends after 4 of 5 keys/);
    expect(() => decodeKeyStates(records, 3)).toThrow(/bytes are left after 3 keys/);
    expect(() => decodeKeyStates(records.subarray(0, records.length - 1), 4)).toThrow(/runs past its end/);
  });

  it('refuses items that do not make the type: an odd hash, a stream entry without its count', () => {
    const oddHash = packReply([b('list'), -1, [b('f'), b('v'), b('g')]]);
    oddHash.write('h', 0, 'latin1');
    expect(() => decodeKeyStates(oddHash, 1)).toThrow(/do not make a hash/);
    const badStream = packReply([b('list'), -1, [b('1-1'), b('xy')]]);
    badStream.write('x', 0, 'latin1');
    expect(() => decodeKeyStates(badStream, 1)).toThrow(/do not make a stream/);
    const unknown = packReply([b('string'), -1, b('v')]);
    unknown.write('?', 0, 'latin1');
    expect(() => decodeKeyStates(unknown, 1)).toThrow(/no valid header/);
  });
});
