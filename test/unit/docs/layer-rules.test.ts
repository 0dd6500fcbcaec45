import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ARCHITECTURE_PATH, layerRules, renderLayerRules, repoRoot, withSection } from '../../../scripts/layer-rules';

const page = (): string => readFileSync(join(repoRoot(), ARCHITECTURE_PATH), 'utf8');

describe("docs/architecture.md's layer rules", () => {
  it('are the rules .dependency-cruiser.cjs enforces (run npm run docs:layers when this fails)', () => {
    expect(page()).toBe(withSection(page(), renderLayerRules()));
  });

  it('name every forbidden rule, with its reason', () => {
    const section = renderLayerRules();
    const rules = layerRules();
    expect(rules.length).toBeGreaterThan(10);
    for (const rule of rules) {
      expect(section).toContain(`**\`${rule.name}\`**`);
      expect(section).toContain(rule.comment);
    }
  });

  it('go stale when a rule changes', () => {
    const [first, ...rest] = layerRules();
    if (first === undefined) throw new Error('no rules');
    const changed = renderLayerRules([{ ...first, comment: `${first.comment} (changed)` }, ...rest]);
    expect(withSection(page(), changed)).not.toBe(page());
  });
});
