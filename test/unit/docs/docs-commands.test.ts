import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createProgram } from '../../../cli/program';

/**
 * Every command README.md and docs/*.md show must exist as written: `npm run <script>` names a
 * script of package.json, and `redis-es-sync <command>`, `node dist/cli/main.js <command>` and
 * `npm run cli -- <command>` name a command of the CLI, with flags it accepts. A renamed
 * command or flag fails here rather than in a newcomer's terminal.
 */
const ROOT = resolve(__dirname, '../../..');

const DOCS = [
  'README.md',
  ...readdirSync(join(ROOT, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => `docs/${f}`),
];

/** Global options that take a value, so the word after them is not the command. */
const VALUE_OPTIONS = new Set([
  '-c',
  '--config',
  '--redis-url',
  '--queue-redis-url',
  '--elasticsearch-url',
  '--log-level',
  '--http-port',
  '--http-host',
]);

const program = createProgram({ stdout: () => undefined, stderr: () => undefined, env: {} }).command;

/** The help `redis-es-sync [command] --help` prints, from the program built in-process. */
function help(args: [] | [string]): string {
  const [name] = args;
  if (name === undefined) return program.helpInformation();
  const command = program.commands.find((c) => c.name() === name);
  expect({ name, exists: command !== undefined }).toEqual({ name, exists: true });
  return command?.helpInformation() ?? '';
}

const flagsIn = (text: string): Set<string> =>
  new Set([...text.matchAll(/(?:^|[\s,])(--?[a-zA-Z][\w-]*)/g)].map((m) => m[1]!));

const globalHelp = help([]);
const commands = [...(globalHelp.split(/^Commands:$/m)[1] ?? '').matchAll(/^ {2}([a-z][\w-]*)/gm)].map((m) => m[1]!);
const globalFlags = flagsIn(globalHelp.split(/^Commands:$/m)[0] ?? '');
const scripts = Object.keys(
  (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts,
);
const benchSource = readFileSync(join(ROOT, 'bench/run.ts'), 'utf8');

/** The code in a Markdown file: fenced blocks and inline code spans. */
function codeOf(text: string): string[] {
  const out: string[] = [];
  const fenced = /^```[^\n]*\n([\s\S]*?)^```/gm;
  for (const m of text.matchAll(fenced)) out.push(...m[1]!.split('\n'));
  for (const m of text.replace(fenced, '').matchAll(/`([^`\n]+)`/g)) out.push(m[1]!);
  return out;
}

interface Invocation {
  file: string;
  code: string;
  words: string[];
}

/** The words after `prefix` up to the end of the command (a comment, a pipe, a `;`, `&&`). */
function invocations(prefix: RegExp): Invocation[] {
  const found: Invocation[] = [];
  for (const file of DOCS) {
    for (const code of codeOf(readFileSync(join(ROOT, file), 'utf8'))) {
      for (const m of code.matchAll(prefix)) {
        const rest = code.slice(m.index + m[0].length).split(/\s#|\s\||;|&&|\)/)[0] ?? '';
        found.push({
          file,
          code,
          words: rest
            .trim()
            .split(/\s+/)
            .filter((w) => w !== ''),
        });
      }
    }
  }
  return found;
}

describe('commands shown in README.md and docs/', () => {
  it('finds the documents and the CLI', () => {
    expect(DOCS).toEqual(expect.arrayContaining(['README.md', 'docs/operations.md', 'docs/configuration.md']));
    expect(commands).toEqual(expect.arrayContaining(['run', 'verify', 'replay']));
  });

  it('run npm scripts that exist', () => {
    const used = invocations(/(?:^|\s)npm run\s+(?=[\w:-])/g).map((i) => ({ file: i.file, script: i.words[0] }));
    expect(used.length).toBeGreaterThan(10);
    for (const u of used) expect({ ...u, exists: scripts.includes(u.script ?? '') }).toEqual({ ...u, exists: true });
  });

  it('run CLI commands that exist, with flags they accept', () => {
    const calls = [
      ...invocations(/(?:^|\s)npm run cli --\s+/g),
      ...invocations(/(?:^|\s)node dist\/cli\/main\.js\s+/g),
      // The bin, or the image name before its command; not a Kubernetes namespace (`-n redis-es-sync`).
      ...invocations(/(?:^|[\s…])(?<!-n )redis-es-sync\s+(?=[a-z-])/g),
    ];
    let checked = 0;
    const helpOf = new Map<string, Set<string>>();
    for (const { file, code, words } of calls) {
      let i = 0;
      while (i < words.length && words[i]!.startsWith('-')) i += VALUE_OPTIONS.has(words[i]!) ? 2 : 1;
      const command = words[i];
      // A placeholder (`<command>`), an image name's build context, or a help-only call.
      if (command === undefined || !/^[a-z][\w-]*$/.test(command)) continue;
      expect({ file, code, command, exists: commands.includes(command) }).toEqual({
        file,
        code,
        command,
        exists: true,
      });
      if (!helpOf.has(command)) helpOf.set(command, flagsIn(help([command]).split(/^Options:$/m)[1] ?? ''));
      const accepted = helpOf.get(command)!;
      for (const flag of words.filter((w) => /^--?[a-zA-Z]/.test(w)).map((w) => w.split('=')[0]!)) {
        expect({ file, code, flag, accepted: accepted.has(flag) || globalFlags.has(flag) }).toEqual({
          file,
          code,
          flag,
          accepted: true,
        });
      }
      checked++;
    }
    expect(checked).toBeGreaterThan(15);
  });

  it('pass the benchmark harness flags it has', () => {
    const flags = invocations(/(?:^|\s)npm run bench --\s+/g).flatMap((i) =>
      i.words.filter((w) => w.startsWith('--')).map((flag) => ({ file: i.file, flag })),
    );
    expect(flags.length).toBeGreaterThan(0);
    for (const f of flags)
      expect({ ...f, exists: benchSource.includes(`'${f.flag} `) || benchSource.includes(`'${f.flag}'`) }).toEqual({
        ...f,
        exists: true,
      });
  });
});
