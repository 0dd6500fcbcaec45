import type { AliasAction } from './port';

/** The `_aliases` request body: the same on every supported engine. */
export function aliasActionsBody(actions: readonly AliasAction[]): { actions: Record<string, unknown>[] } {
  return {
    actions: actions.map((a) => {
      if ('add' in a) return { add: { index: a.add.index, alias: a.add.alias, is_write_index: true } };
      if ('remove' in a) return { remove: { index: a.remove.index, alias: a.remove.alias } };
      return { remove_index: { index: a.removeIndex.index } };
    }),
  };
}

/** The indices a `GET /_alias/<name>` answer puts behind `name`, sorted. */
export function aliasIndices(answer: unknown, name: string): string[] {
  if (typeof answer !== 'object' || answer === null) return [];
  return Object.entries(answer as Record<string, { aliases?: Record<string, unknown> }>)
    .filter(([, v]) => v.aliases !== undefined && name in v.aliases)
    .map(([index]) => index)
    .sort();
}
