/**
 * The project promises a Node.js range (package.json `engines.node`); every installed package
 * that declares its own `engines.node` must run on all of it, or an upgrade of one dependency
 * silently narrows what the project supports. No server needed: it reads node_modules.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import semver from 'semver';

const root = resolve(__dirname, '../../..');

interface Manifest {
  name?: string;
  version?: string;
  engines?: unknown;
}

function readManifest(file: string): Manifest {
  return JSON.parse(readFileSync(file, 'utf8')) as Manifest;
}

/** The `engines.node` string, or undefined when the package declares none (or the pre-npm-2 array form). */
function nodeRange(manifest: Manifest): string | undefined {
  const engines = manifest.engines;
  if (typeof engines !== 'object' || engines === null || Array.isArray(engines)) return undefined;
  const node: unknown = (engines as Record<string, unknown>).node;
  return typeof node === 'string' ? node : undefined;
}

/** Every package folder under node_modules, nested ones included (npm nests a second version of a package). */
function installedPackages(modules: string): string[] {
  if (!existsSync(modules)) return [];
  const found: string[] = [];
  for (const entry of readdirSync(modules, { withFileTypes: true })) {
    if (entry.name.startsWith('.')) continue;
    const dir = join(modules, entry.name);
    if (entry.name.startsWith('@')) {
      found.push(...installedPackages(dir));
      continue;
    }
    if (!existsSync(join(dir, 'package.json'))) continue;
    found.push(dir, ...installedPackages(join(dir, 'node_modules')));
  }
  return found;
}

const project = readManifest(join(root, 'package.json'));
const projectRange = nodeRange(project);

/**
 * The Node versions the check runs every package's range against: the lowest version the
 * project admits and the first release of each LTS line it admits. Odd majors are skipped on
 * purpose: they are six-month "Current" releases that never become LTS, and some tools
 * (dependency-cruiser: `^22||^24||>=26`) exclude them deliberately; nobody should run this
 * service on one. The horizon is a few LTS lines ahead so that a range capped at a major
 * (`^24`) fails before that line ships.
 */
function probes(range: string): string[] {
  const lowest = semver.minVersion(range);
  if (lowest === null) throw new Error(`engines.node ${range} admits no version`);
  const versions = [lowest.version];
  for (let major = lowest.major; major <= lowest.major + 6; major++) {
    if (major % 2 === 0 && major !== lowest.major) versions.push(`${String(major)}.0.0`);
  }
  return versions.filter((v) => semver.satisfies(v, range));
}

describe('Node.js engines', () => {
  it('the project requires Node.js 24 LTS or newer', () => {
    expect(projectRange).toBeDefined();
    expect(semver.minVersion(projectRange ?? '')?.major).toBe(24);
    expect(semver.satisfies(process.versions.node, projectRange ?? '')).toBe(true);
  });

  it('every installed package that declares engines.node admits the project range', () => {
    const range = projectRange ?? '';
    const versions = probes(range);
    const packages = installedPackages(join(root, 'node_modules'));
    // A sanity floor: an empty or unreadable node_modules would otherwise pass vacuously.
    expect(packages.length).toBeGreaterThan(50);
    const refusing: string[] = [];
    for (const dir of packages) {
      const manifest = readManifest(join(dir, 'package.json'));
      const declared = nodeRange(manifest);
      if (declared === undefined || semver.validRange(declared) === null) continue;
      const rejected = versions.filter((v) => !semver.satisfies(v, declared));
      if (rejected.length > 0) {
        refusing.push(
          `${manifest.name ?? dir}@${manifest.version ?? '?'} engines.node ${declared} rejects ${rejected.join(', ')}`,
        );
      }
    }
    expect(refusing).toEqual([]);
  });

  it('the Docker image runs a Node.js major the project admits', () => {
    const dockerfile = readFileSync(join(root, 'Dockerfile'), 'utf8');
    const majors = [...dockerfile.matchAll(/^FROM node:(\d+)/gm)].map((m) => m[1] ?? '');
    expect(majors.length).toBeGreaterThan(0);
    for (const major of majors) expect(semver.satisfies(`${major}.0.0`, projectRange ?? '')).toBe(true);
  });
});
