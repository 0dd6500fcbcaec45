import { inHistory, parseHistory } from '../../../../../producers/capture/replication/checkpoint';

const A = 'a'.repeat(40);
const B = 'b'.repeat(40);
const NONE = '0'.repeat(40);

describe("a master's replication history and the checkpoints it can continue from", () => {
  it('reads master_replid, master_replid2 and second_repl_offset from INFO replication', () => {
    const info = [
      '# Replication',
      'role:master',
      'connected_slaves:1',
      `master_replid:${B}`,
      `master_replid2:${A}`,
      'master_repl_offset:5000',
      'second_repl_offset:4001',
      '',
    ].join('\r\n');
    expect(parseHistory(info)).toEqual({ replid: B, replid2: A, secondOffset: 4001 });
    expect(parseHistory('# Replication\r\nrole:master\r\n')).toBeUndefined();
  });

  it('continues its own id at any offset, its previous id only up to where the switch happened', () => {
    const promoted = { replid: B, replid2: A, secondOffset: 4001 };
    expect(inHistory({ replid: B, offset: 9999, db: 0 }, promoted)).toBe(true);
    // PSYNC asks for offset + 1, which must not pass second_repl_offset.
    expect(inHistory({ replid: A, offset: 4000, db: 0 }, promoted)).toBe(true);
    expect(inHistory({ replid: A, offset: 4001, db: 0 }, promoted)).toBe(false);
    expect(inHistory({ replid: 'c'.repeat(40), offset: 10, db: 0 }, promoted)).toBe(false);
    // A master that never switched has no previous id: the all-zero one matches nothing.
    const fresh = { replid: B, replid2: NONE, secondOffset: -1 };
    expect(inHistory({ replid: NONE, offset: 0, db: 0 }, fresh)).toBe(false);
  });
});
