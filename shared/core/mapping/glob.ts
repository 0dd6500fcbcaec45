/**
 * Redis glob semantics (the ones SCAN MATCH and PSUBSCRIBE use): `*` and `?` cross `:` and `/`,
 * `[abc]`, `[^a]`, `[a-z]` and `\x` escapes. Each `*` and `?` is a capture group, so rules can
 * use `{1}`, `{2}` in their id templates.
 */
export function globToRegExp(glob: string): RegExp {
  let out = '^';
  for (let i = 0; i < glob.length; i++) {
    const c = glob.charAt(i);
    if (c === '*') {
      while (glob[i + 1] === '*') i++;
      out += '(.*)';
    } else if (c === '?') {
      out += '(.)';
    } else if (c === '\\' && i + 1 < glob.length) {
      out += escapeRegExp(glob.charAt(++i));
    } else if (c === '[') {
      const end = findClassEnd(glob, i);
      if (end < 0) {
        out += '\\[';
        continue;
      }
      let body = glob.slice(i + 1, end);
      const negate = body.startsWith('^');
      if (negate) body = body.slice(1);
      out += `[${negate ? '^' : ''}${body.replace(/[\]\\]/g, '\\$&')}]`;
      i = end;
    } else {
      out += escapeRegExp(c);
    }
  }
  return new RegExp(`${out}$`, 's');
}

function findClassEnd(glob: string, start: number): number {
  for (let j = start + 1; j < glob.length; j++) {
    if (glob[j] === '\\') j++;
    else if (glob[j] === ']' && j > start + 1) return j;
  }
  return -1;
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&');
}
