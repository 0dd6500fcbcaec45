import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type AppConfig } from '../../../../../shared/platform/config/schema';
import { ConfigSchema, type ConfigInput } from '../../../../../producers/capture/registry';
import { ConfigError } from '../../../../../shared/platform/errors';
import { buildDocument } from '../../../../../shared/core/mapping/document';
import { globToRegExp } from '../../../../../shared/core/mapping/glob';
import { KeyRouter } from '../../../../../shared/core/mapping/router';

/** A mapping section as loadConfig would produce it (defaults applied). */
function mapping(input: ConfigInput['mapping'] = {}): AppConfig['mapping'] {
  return ConfigSchema.shape.mapping.parse(input);
}

function router(input: ConfigInput['mapping'] = {}, databases: number[] = [0], baseDir?: string): KeyRouter {
  return KeyRouter.fromConfig(mapping(input), baseDir, databases);
}

function configErrorOf(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

describe('globToRegExp (Redis glob semantics)', () => {
  it('* matches anything, across : and /', () => {
    const re = globToRegExp('user:*');
    expect(re.test('user:1')).toBe(true);
    expect(re.test('user:1:profile/avatar')).toBe(true);
    expect(re.test('user:')).toBe(true);
    expect(re.test('users:1')).toBe(false);
    expect(re.test('xuser:1')).toBe(false);
    expect(globToRegExp('*').test('a\nb')).toBe(true);
  });

  it('? matches exactly one character', () => {
    const re = globToRegExp('h?llo');
    expect(re.test('hello')).toBe(true);
    expect(re.test('h:llo')).toBe(true);
    expect(re.test('hllo')).toBe(false);
    expect(re.test('heello')).toBe(false);
  });

  it('[abc], [^a] and [a-z] are character classes', () => {
    expect(globToRegExp('h[ae]llo').test('hallo')).toBe(true);
    expect(globToRegExp('h[ae]llo').test('hello')).toBe(true);
    expect(globToRegExp('h[ae]llo').test('hillo')).toBe(false);
    expect(globToRegExp('h[^e]llo').test('hallo')).toBe(true);
    expect(globToRegExp('h[^e]llo').test('hello')).toBe(false);
    expect(globToRegExp('h[a-c]llo').test('hbllo')).toBe(true);
    expect(globToRegExp('h[a-c]llo').test('hdllo')).toBe(false);
  });

  it('\\ escapes special characters; regex metacharacters are literal', () => {
    const star = globToRegExp('a\\*b');
    expect(star.test('a*b')).toBe(true);
    expect(star.test('axb')).toBe(false);
    expect(globToRegExp('a\\?').test('a?')).toBe(true);
    expect(globToRegExp('a\\?').test('ab')).toBe(false);
    expect(globToRegExp('a\\[b]').test('a[b]')).toBe(true);
    expect(globToRegExp('a.b+(c)').test('a.b+(c)')).toBe(true);
    expect(globToRegExp('a.b').test('axb')).toBe(false);
    expect(globToRegExp('$x^').test('$x^')).toBe(true);
  });

  it('an unterminated [ is literal', () => {
    expect(globToRegExp('a[b').test('a[b')).toBe(true);
  });

  it('each * and ? is a capture group', () => {
    const m = globToRegExp('cart:*:item:?').exec('cart:u1:x:item:7');
    expect(m?.slice(1)).toEqual(['u1:x', '7']);
    // Consecutive stars are one group.
    expect(globToRegExp('a**b').exec('aXYb')?.slice(1)).toEqual(['XY']);
  });
});

describe('KeyRouter.fromConfig', () => {
  it('routes a glob match with captures into the id template', () => {
    const r = router({ rules: [{ match: 'user:*:profile', index: 'users', id: 'u-{1}' }] });
    expect(r.route(0, 'user:42:profile')).toMatchObject({ index: 'users', id: 'u-42' });
  });

  it('routes regex named groups into {name}, and numbered groups into {n}', () => {
    const r = router({ rules: [{ regex: '^order:(?<region>[a-z]+):(\\d+)$', index: 'orders', id: '{region}/{2}' }] });
    expect(r.route(0, 'order:eu:1001')).toMatchObject({ index: 'orders', id: 'eu/1001' });
    // Not matched by the regex: falls through to the default index.
    expect(r.route(0, 'order:EU:1001')).toMatchObject({ index: 'redis', id: 'order:EU:1001' });
  });

  it('expands {key} and {db}', () => {
    const r = router({ rules: [{ match: 'k:*', id: '{db}|{key}', databases: [5] }] }, [5]);
    expect(r.route(5, 'k:1')).toMatchObject({ index: 'redis', id: '5|k:1' });
  });

  it('the first matching rule wins', () => {
    const r = router({
      rules: [
        { match: 'user:admin:*', index: 'admins' },
        { match: 'user:*', index: 'users' },
      ],
    });
    expect(r.route(0, 'user:admin:1')?.index).toBe('admins');
    expect(r.route(0, 'user:2')?.index).toBe('users');
  });

  it('skip rules stop matching and leave the key unsynced', () => {
    const r = router({
      rules: [
        { match: 'user:*:tmp', skip: true },
        { match: 'user:*', index: 'users' },
      ],
    });
    expect(r.route(0, 'user:1:tmp')).toBeUndefined();
    expect(r.route(0, 'user:1')?.index).toBe('users');
  });

  it('a databases restriction limits the rule to those databases', () => {
    const r = router(
      {
        rules: [
          { match: 'user:*', index: 'users-a', databases: [1], id: '{1}' },
          { match: 'user:*', index: 'users-b', id: '{db}:{1}' },
        ],
      },
      [0, 1],
    );
    expect(r.route(1, 'user:7')).toMatchObject({ index: 'users-a', id: '7' });
    expect(r.route(0, 'user:7')).toMatchObject({ index: 'users-b', id: '0:7' });
  });

  it("unmatched: 'skip' leaves other keys out; 'index' sends them to the default index", () => {
    const skip = router({ unmatched: 'skip', rules: [{ match: 'user:*', index: 'users' }] });
    expect(skip.route(0, 'other')).toBeUndefined();
    expect(skip.route(0, 'user:1')?.index).toBe('users');
    // syncs() says the same as route(), without building ids.
    for (const [key, synced] of [
      ['other', false],
      ['user:1', true],
    ] as const)
      expect(skip.syncs(0, key)).toBe(synced);

    const index = router({
      unmatched: 'index',
      defaultIndex: 'everything',
      rules: [{ match: 'user:*', index: 'users' }],
    });
    const route = index.route(0, 'other');
    expect(route).toMatchObject({ index: 'everything', id: 'other' });
    expect(route?.shape).toEqual({ json: 'auto', searchText: true });
    expect(index.syncs(0, 'other')).toBe(true);
    const skipRule = router({ unmatched: 'index', rules: [{ match: 'tmp:*', skip: true }] });
    expect([skipRule.syncs(0, 'tmp:1'), skipRule.route(0, 'tmp:1')]).toEqual([false, undefined]);
  });

  it('rule shapes carry json, fields and coerce', () => {
    const r = router({
      rules: [
        {
          match: 'p:*',
          index: 'products',
          json: false,
          fields: { keep: ['a'], rename: { a: 'b' } },
          coerce: { a: 'number' },
        },
      ],
    });
    expect(r.route(0, 'p:1')?.shape).toMatchObject({
      json: false,
      keep: ['a'],
      rename: { a: 'b' },
      coerce: { a: 'number' },
    });
  });

  it('indices() lists every index written to, without skip rules and duplicates', () => {
    const r = router({
      defaultIndex: 'fallback',
      rules: [
        { match: 'a:*', index: 'alpha' },
        { match: 'b:*', index: 'alpha' },
        { match: 'c:*', index: 'gamma' },
        { match: 'd:*', skip: true, index: 'never' },
        { match: 'e:*' },
      ],
    });
    expect(r.indices().sort()).toEqual(['alpha', 'fallback', 'gamma']);
    const skipping = router({ unmatched: 'skip', rules: [{ match: 'a:*', index: 'alpha' }] });
    expect(skipping.indices()).toEqual(['alpha']);
  });

  it('hashes routed ids that are too long', () => {
    const key = `user:${'x'.repeat(600)}`;
    expect(router().route(0, key)?.id).toMatch(/^sha256:[0-9a-f]{64}$/);
  });

  it('the default route uses {db}:{key} when several databases are synced', () => {
    expect(router({}, [0, 3]).route(3, 'foo')?.id).toBe('3:foo');
    expect(router({}, [0]).route(0, 'foo')?.id).toBe('foo');
  });

  describe('configuration errors', () => {
    it('a bad regex', () => {
      const err = configErrorOf(() => router({ rules: [{ match: 'ok:*' }, { regex: '^user:(\\d+$' }] }));
      expect(err.message).toContain('mapping.rules[1].regex');
      expect(err.issues[0]?.field).toBe('mapping.rules[1].regex');
    });

    it('an id template naming an unknown group', () => {
      const regex = configErrorOf(() => router({ rules: [{ regex: '^user:(?<id>\\d+)$', id: '{name}' }] }));
      expect(regex.message).toContain('mapping.rules[0].id');
      expect(regex.message).toContain('{name}');
      const glob = configErrorOf(() => router({ rules: [{ match: 'user:*', id: '{id}' }] }));
      expect(glob.message).toContain('mapping.rules[0].id');
    });

    it('several databases and an id without {db}', () => {
      const err = configErrorOf(() => router({ rules: [{ match: 'user:*', index: 'users', id: '{1}' }] }, [0, 1]));
      expect(err.message).toContain('mapping.rules[0].id');
      expect(err.message).toContain('{db}');
      // Fine when the rule is pinned to one database, skips, or uses {db}.
      expect(() =>
        router(
          {
            rules: [
              { match: 'a:*', id: '{1}', databases: [0] },
              { match: 'b:*', skip: true },
              { match: 'c:*', id: '{db}-{1}' },
            ],
          },
          [0, 1],
        ),
      ).not.toThrow();
    });
  });

  describe('transform modules', () => {
    let dir: string;
    beforeAll(() => {
      dir = mkdtempSync(join(tmpdir(), 'res-router-'));
      writeFileSync(
        join(dir, 'upper.js'),
        'module.exports = (doc, ctx) => ({ ...doc, value: String(doc.value).toUpperCase(), seen: ctx.key });\n',
      );
      writeFileSync(join(dir, 'named.js'), 'exports.transform = (doc) => (doc.value === "drop" ? null : doc);\n');
      writeFileSync(join(dir, 'nofn.js'), 'module.exports = { transform: 42 };\n');
    });
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    it('loads a module exporting a function, relative to baseDir', () => {
      const r = router({ rules: [{ match: 'up:*', transform: './upper.js' }] }, [0], dir);
      const route = r.route(0, 'up:1');
      expect(route?.shape.transform).toBeInstanceOf(Function);
      const doc = buildDocument(route!.shape, 0, 'up:1', { exists: true, type: 'string', value: Buffer.from('hello') });
      expect(doc).toEqual({ key: 'up:1', db: 0, type: 'string', value: 'HELLO', seen: 'up:1' });
    });

    it('accepts exports.transform', () => {
      const r = router({ rules: [{ match: '*', transform: 'named.js' }] }, [0], dir);
      const shape = r.route(0, 'x')!.shape;
      expect(buildDocument(shape, 0, 'x', { exists: true, type: 'string', value: Buffer.from('drop') })).toBeNull();
      expect(buildDocument(shape, 0, 'x', { exists: true, type: 'string', value: Buffer.from('keep') })?.value).toBe(
        'keep',
      );
    });

    it('a module without a function is a ConfigError', () => {
      const err = configErrorOf(() => router({ rules: [{ match: '*', transform: './nofn.js' }] }, [0], dir));
      expect(err.message).toContain('mapping.rules[0].transform');
      expect(err.message).toContain('must export a function');
    });

    it('a missing module is a ConfigError', () => {
      const err = configErrorOf(() => router({ rules: [{ match: '*', transform: './absent.js' }] }, [0], dir));
      expect(err.message).toContain('mapping.rules[0].transform');
      expect(err.message).toContain(join(dir, 'absent.js'));
    });
  });
});
