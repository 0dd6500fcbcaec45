import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../../../../shared/platform/config/load';
import { ConfigSchema, type SyncConfig } from '../../../../../producers/capture/registry';
import { ConfigError } from '../../../../../shared/platform/errors';
import {
  compareIds,
  decodeAutoClaim,
  decodeClaim,
  decodeConsumers,
  decodeGroups,
  decodeOldestPending,
  decodePendingIds,
  decodeReadGroup,
  minId,
  nextId,
  parseEntry,
  type EntryRules,
} from '../../../../../producers/capture/outbox/entry';

const rules: EntryRules = { defaultDb: 0, databases: new Set([0, 2]) };

describe('outbox entry format', () => {
  it('reads one key, in the stream’s database by default', () => {
    expect(parseEntry({ id: '1-0', fields: ['key', 'user:1'] }, rules)).toEqual({
      kind: 'change',
      id: '1-0',
      db: 0,
      keys: ['user:1'],
    });
  });

  it('reads several keys, a db, and ignores fields of the application’s own', () => {
    const entry = parseEntry(
      { id: '1-1', fields: ['op', 'checkout', 'key', 'cart:7', 'db', '2', 'key', 'order:9'] },
      rules,
    );
    expect(entry).toEqual({ kind: 'change', id: '1-1', db: 2, keys: ['cart:7', 'order:9'] });
  });

  it.each([
    [['value', 'x'], 'no `key` field'],
    [[], 'no `key` field'],
    [['key', 'a', 'db', 'zero'], '`db` is not a database number: "zero"'],
    [['key', 'a', 'db', '-1'], '`db` is not a database number: "-1"'],
    [['key', 'a', 'db', '5'], 'db 5 is not in redis.databases'],
    [['key', 'a', 'db', '0', 'db', '2'], 'more than one `db` field'],
  ])('calls %j malformed: %s', (fields, reason) => {
    expect(parseEntry({ id: '2-0', fields }, rules)).toEqual({ kind: 'malformed', id: '2-0', reason });
  });

  it('captures the empty key: "" is a valid Redis key', () => {
    expect(parseEntry({ id: '2-1', fields: ['key', ''] }, rules)).toEqual({
      kind: 'change',
      id: '2-1',
      db: 0,
      keys: [''],
    });
    const entry = parseEntry({ id: '2-2', fields: ['key', 'a', 'key', '', 'key', 'b'] }, rules);
    expect(entry).toEqual({ kind: 'change', id: '2-2', db: 0, keys: ['a', '', 'b'] });
  });

  it('tells an entry deleted after delivery apart', () => {
    expect(parseEntry({ id: '3-0', fields: null }, rules)).toEqual({ kind: 'deleted', id: '3-0' });
  });
});

describe('stream replies', () => {
  it('decodes XREADGROUP, including a timed-out BLOCK and a deleted entry', () => {
    expect(decodeReadGroup(null)).toEqual([]);
    expect(decodeReadGroup([['s', []]])).toEqual([]);
    expect(
      decodeReadGroup([
        [
          's',
          [
            ['1-0', ['key', 'a']],
            ['1-1', null],
          ],
        ],
      ]),
    ).toEqual([
      { id: '1-0', fields: ['key', 'a'] },
      { id: '1-1', fields: null },
    ]);
    expect(() => decodeReadGroup('OK')).toThrow('unexpected XREADGROUP reply');
  });

  it('decodes XAUTOCLAIM of Redis 6.2 and 7', () => {
    expect(decodeAutoClaim(['0-0', [['5-0', ['key', 'k']]]])).toEqual({
      next: '0-0',
      entries: [{ id: '5-0', fields: ['key', 'k'] }],
      deleted: [],
    });
    expect(decodeAutoClaim(['7-0', [], ['6-0']])).toEqual({ next: '7-0', entries: [], deleted: ['6-0'] });
  });

  it('decodes XCLAIM, leaving out entries deleted from the stream (null on 6.2, absent on 7)', () => {
    expect(decodeClaim([['5-0', ['key', 'k']], null, ['6-0', null]])).toEqual([{ id: '5-0', fields: ['key', 'k'] }]);
    expect(decodeClaim([])).toEqual([]);
  });

  it('decodes XINFO CONSUMERS and the ids of the XPENDING extended form', () => {
    expect(
      decodeConsumers([
        ['name', 'a', 'pending', 3, 'idle', 10, 'inactive', 5],
        ['name', 'b', 'pending', 0, 'idle', 99],
      ]),
    ).toEqual([
      { name: 'a', pending: 3 },
      { name: 'b', pending: 0 },
    ]);
    expect(
      decodePendingIds([
        ['1-0', 'a', 10, 1],
        ['1-1', 'a', 10, 2],
      ]),
    ).toEqual(['1-0', '1-1']);
    expect(() => decodePendingIds('OK')).toThrow('unexpected XPENDING reply');
  });

  it('decodes XINFO GROUPS and the XPENDING summary', () => {
    const groups = decodeGroups([
      ['name', 'g', 'consumers', 1, 'pending', 2, 'last-delivered-id', '9-3', 'entries-read', 5, 'lag', 0],
    ]);
    expect(groups).toEqual([{ name: 'g', pending: 2, lastDeliveredId: '9-3' }]);
    expect(decodeOldestPending([2, '4-0', '9-3', [['c', '2']]])).toBe('4-0');
    expect(decodeOldestPending([0, null, null, null])).toBeUndefined();
  });
});

describe('stream ids', () => {
  it('compare as numbers, not strings', () => {
    expect(compareIds('9-0', '10-0')).toBe(-1);
    expect(compareIds('10-2', '10-10')).toBe(-1);
    expect(compareIds('10-10', '10-10')).toBe(0);
    expect(minId('1700000000000-5', '999-0')).toBe('999-0');
  });

  it('have a successor, also past the largest sequence number', () => {
    expect(nextId('5-0')).toBe('5-1');
    expect(nextId('5-18446744073709551615')).toBe('6-0');
  });
});

describe('producer.outbox configuration', () => {
  const env = { REDIS_URL: 'redis://data.example:6379/0', ELASTICSEARCH_URL: 'http://es.example:9200' };
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'res-outbox-config-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  function load(yaml: string): ReturnType<typeof loadConfig<SyncConfig>> {
    const path = join(dir, `c${Math.random().toString(36).slice(2)}.yml`);
    writeFileSync(path, yaml);
    return loadConfig(ConfigSchema, { config: path }, env);
  }

  it('has defaults', () => {
    const { config } = load('producer: { mode: outbox }');
    expect(config.producer.mode).toBe('outbox');
    expect(config.producer.outbox).toEqual({
      group: 'redis-es-sync',
      shareGroup: false,
      batch: 500,
      blockMs: 2000,
      claimIdleMs: 60000,
      startFrom: '0',
      reconcileIntervalMs: 0,
    });
  });

  it('names the bad field', () => {
    let error: unknown;
    try {
      load("producer: { mode: outbox, outbox: { startFrom: 'latest', batch: 0 } }");
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const fields = (error as ConfigError).issues.map((i) => i.field).sort();
    expect(fields).toEqual(['producer.outbox.batch', 'producer.outbox.startFrom']);
  });
});
