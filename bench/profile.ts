import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
}

export interface ProfileShare {
  where: string;
  percent: number;
}

/**
 * Self time of a V8 CPU profile (`node --cpu-prof`) by package or project file: node_modules
 * packages by name, our own files by path, V8's own entries (GC, idle) as they are named.
 */
export function summarizeProfile(dir: string, top = 12): ProfileShare[] {
  const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
  if (!file) throw new Error(`no .cpuprofile in ${dir}`);
  const profile = JSON.parse(readFileSync(join(dir, file), 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const totals = new Map<string, number>();
  for (const id of profile.samples) {
    const where = placeOf(byId.get(id)?.callFrame);
    totals.set(where, (totals.get(where) ?? 0) + 1);
  }
  return [...totals]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([where, n]) => ({ where, percent: (100 * n) / profile.samples.length }));
}

function placeOf(frame: ProfileNode['callFrame'] | undefined): string {
  if (!frame) return '(unknown)';
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(frame.url)?.[1];
  if (pkg !== undefined) return pkg;
  const own = /\/dist\/(.+)\.js$/.exec(frame.url);
  if (own) return `${own[1]}.ts`;
  if (frame.url.startsWith('node:')) return 'node internals';
  return frame.functionName || '(native)';
}
