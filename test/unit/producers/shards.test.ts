import { planShards } from '../../../producers/shards';

const masters = ['a', 'b', 'c'];

/**
 * Runs the producers' rounds (each one's plan applied in turn, an acquisition won by the first
 * to try) until nothing changes, as the shard leases would settle.
 */
function settle(producers: number, start: string[][]): string[][] {
  const held = start.map((h) => [...h]);
  for (let round = 0; round < 20; round++) {
    let changed = false;
    for (let p = 0; p < producers; p++) {
      const others = new Set(held.filter((_, q) => q !== p).flat());
      const plan = planShards({ masters, held: held[p] ?? [], others, producers, offset: p });
      const mine = (held[p] ?? []).filter((s) => !plan.release.includes(s));
      let room = plan.share - mine.length;
      for (const c of plan.candidates) {
        if (room <= 0) break;
        if (held.some((h) => h.includes(c))) continue;
        mine.push(c);
        room--;
      }
      if (mine.join() !== (held[p] ?? []).join()) changed = true;
      held[p] = mine;
    }
    if (!changed) return held;
  }
  throw new Error('the shard plan did not settle');
}

describe('planShards: the fair share of one producer', () => {
  it('alone, takes every master', () => {
    const plan = planShards({ masters, held: [], others: new Set(), producers: 1, offset: 0 });
    expect(plan.share).toBe(3);
    expect(plan.candidates).toEqual(['a', 'b', 'c']);
    expect(plan.release).toEqual([]);
  });

  it('gives up the surplus above ceil(masters / producers) when producers join', () => {
    expect(planShards({ masters, held: ['a', 'b', 'c'], others: new Set(), producers: 2, offset: 0 })).toEqual({
      share: 2,
      release: ['c'],
      candidates: [],
    });
    expect(planShards({ masters, held: ['a', 'b'], others: new Set(['c']), producers: 3, offset: 0 }).release).toEqual([
      'b',
    ]);
  });

  it('takes only free shards, and only up to its share', () => {
    const plan = planShards({ masters, held: [], others: new Set(['a', 'b']), producers: 2, offset: 0 });
    expect(plan).toEqual({ share: 2, release: [], candidates: ['c'] });
    expect(
      planShards({ masters, held: ['a'], others: new Set(['b', 'c']), producers: 3, offset: 1 }).candidates,
    ).toEqual([]);
  });

  it('releases a held shard whose node is no longer a master, and offers the promoted one', () => {
    const plan = planShards({
      masters: ['a', 'b', 'd'],
      held: ['c'],
      others: new Set(['a', 'b']),
      producers: 3,
      offset: 0,
    });
    expect(plan.release).toEqual(['c']);
    expect(plan.candidates).toEqual(['d']);
  });

  it('starts its candidates at its own offset, so producers joining together try different shards', () => {
    const at = (offset: number): string[] =>
      planShards({ masters, held: [], others: new Set(), producers: 3, offset }).candidates;
    expect(new Set([at(0)[0], at(1)[0], at(2)[0]])).toEqual(new Set(masters));
  });

  it.each([
    [1, [[]]],
    [2, [['a', 'b', 'c'], []]],
    [3, [['a', 'b'], ['c'], []]],
    [3, [[], [], []]],
    [4, [['a', 'b', 'c'], [], [], []]],
    [2, [['a'], []]],
  ])('with %i producers every master ends held by exactly one, none above its share', (producers, start) => {
    const held = settle(producers, start);
    const all = held.flat().sort();
    expect(all).toEqual(masters);
    for (const h of held) expect(h.length).toBeLessThanOrEqual(Math.ceil(masters.length / producers));
  });
});
