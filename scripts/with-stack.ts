/**
 * `npm start`, `npm run cli` and `npm run seed`: runs a script of dist/ against the local stack
 * of `scripts/dev-stack.sh`, whose endpoints are in `$STACK_DIR/env` (default `.stack/env`).
 * `node --env-file` alone would fail with `not found` and no hint when the stack is not up.
 * Variables already set win over the file, as with `--env-file`.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';

/** The stack is not up: someone must start it (the exit code of a configuration problem). */
const EXIT_NOT_UP = 2;

const root = resolve(__dirname, '../..');
// An empty STACK_DIR (`STACK_DIR= npm start`) means the default, as in dev-stack.sh.
// eslint-disable-next-line @typescript-eslint/prefer-nullish-coalescing -- see above
const stackDir = process.env.STACK_DIR || '.stack';
const dir = isAbsolute(stackDir) ? stackDir : resolve(root, stackDir);
const envFile = resolve(dir, 'env');
const [script, ...args] = process.argv.slice(2);

if (!script) {
  process.stderr.write('usage: node dist/scripts/with-stack.js <script in dist/> [args…]\n');
  process.exit(64);
}
if (!existsSync(envFile)) {
  const prefix = process.env.STACK_DIR ? `STACK_DIR=${process.env.STACK_DIR} ` : '';
  process.stderr.write(
    `redis-es-sync: the local stack is not up (${envFile} is missing).\n` +
      `  start it:   ${prefix}npm run stack up      (or npm run setup: install, build, start)\n` +
      `  or point at your own servers: REDIS_URL=… QUEUE_REDIS_URL=… ELASTICSEARCH_URL=… node dist/cli/main.js …\n`,
  );
  process.exit(EXIT_NOT_UP);
}

const env: NodeJS.ProcessEnv = { ...process.env };
for (const line of readFileSync(envFile, 'utf8').split('\n')) {
  const [, name, value] = /^\s*([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line) ?? [];
  if (name !== undefined && value !== undefined && env[name] === undefined)
    env[name] = value.replace(/^(['"])(.*)\1$/, '$2');
}
const child = spawn(process.execPath, [resolve(root, script), ...args], { env, stdio: 'inherit' });
// Signals reach the child through the terminal's process group; pass on an explicit kill too.
for (const signal of ['SIGTERM', 'SIGINT'] as const) process.on(signal, () => child.kill(signal));
child.on('exit', (code, signal) => {
  if (signal) process.kill(process.pid, signal);
  else process.exit(code ?? 1);
});
