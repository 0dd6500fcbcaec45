import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { configEnvVars } from '../../../shared/platform/config/load';
import { CONFIG_REFERENCE_PATH, configFields, renderConfigReference } from '../../../scripts/config-reference';

/**
 * docs/configuration.md is generated from the config schema (`npm run docs:config`): it must be
 * exactly what the generator produces now, and every field must say what it is.
 */
const ROOT = resolve(__dirname, '../../..');

describe('the configuration reference', () => {
  const fields = configFields();

  it('covers the whole schema', () => {
    const paths = fields.map((f) => f.path);
    expect(paths).toEqual(
      expect.arrayContaining([
        'redis.url',
        'queue.prefix',
        'elasticsearch.url',
        'mapping.rules[].match',
        'mapping.indices.<name>.settings',
        'producer.outbox.claimIdleMs',
        'http.operator.basic.password',
        'search.cache.maxTotalBytes',
      ]),
    );
    expect(new Set(paths).size).toBe(paths.length);
  });

  it('has a description for every field', () => {
    expect(fields.filter((f) => !f.description?.trim()).map((f) => f.path)).toEqual([]);
  });

  it('shows the defaults the schema applies', () => {
    const byPath = new Map(fields.map((f) => [f.path, f]));
    expect(byPath.get('producer.reconcileIntervalMs')?.default).toBe('600000');
    expect(byPath.get('http.port')?.default).toBe('0');
    expect(byPath.get('redis.patterns')?.default).toBe('["*"]');
  });

  it('names every environment variable the loader reads', () => {
    const text = renderConfigReference();
    for (const name of configEnvVars())
      expect({ name, documented: text.includes(`\`${name}\``) }).toEqual({ name, documented: true });
  });

  it(`is what ${CONFIG_REFERENCE_PATH} holds (run npm run docs:config after changing the schema)`, () => {
    expect(readFileSync(join(ROOT, CONFIG_REFERENCE_PATH), 'utf8')).toBe(renderConfigReference());
  });
});
