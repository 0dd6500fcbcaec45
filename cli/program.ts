import { partitionsCommand } from './commands/partitions';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { configuredLogLevel, type ConfigFlags } from '../shared/platform/config/load';
import { describeSinkFailure } from '../shared/sink/create-sink';
import {
  ConfigError,
  DependenciesError,
  DependencyError,
  EXIT,
  RedisSetupError,
  UsageError,
  exitCodeOf,
} from '../shared/platform/errors';
import { createLogger, redactText } from '../shared/platform/logger';
import { reconcileCommand } from './commands/reconcile';
import { dashboardCommand } from './commands/dashboard';
import { serveCommand } from './commands/serve';
import { failuresCommand, replayCommand, type FailuresFlags, type ReplayFlags } from './commands/replay';
import { runService } from './commands/run';
import { snapshotCommand } from './commands/snapshot';
import { statusCommand, type StatusFlags } from './commands/status';
import { verifyCommand, type VerifyFlags } from './commands/verify';
import { rebuildCommand, type RebuildFlags } from './commands/rebuild';

/** The package's version, from the package.json above this file (in the sources or in dist/). */
function version(): string {
  for (const up of ['..', '../..']) {
    try {
      const pkg = JSON.parse(readFileSync(resolve(__dirname, up, 'package.json'), 'utf8')) as {
        name?: string;
        version?: string;
      };
      if (pkg.name === 'redis-es-sync' && pkg.version) return pkg.version;
    } catch {
      // not there: try one level up
    }
  }
  return 'unknown';
}

/** A whole number ≥ `min` for a numeric flag; commander reports anything else as a usage error. */
function count(min = 0): (value: string) => number {
  return (value) => {
    if (!/^\d+$/.test(value.trim()) || Number(value) < min)
      throw new InvalidArgumentError(`must be a whole number${min > 0 ? ` ≥ ${min}` : ''}.`);
    return Number(value);
  };
}

/** `500ms`, `90s`, `5m`, `1h` (or plain milliseconds) for a duration flag, in milliseconds. */
function duration(value: string): number {
  const m = /^(\d+)(ms|s|m|h)?$/.exec(value.trim());
  if (!m) throw new InvalidArgumentError('must be a duration such as 500ms, 90s, 5m or 1h.');
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[(m[2] ?? 'ms') as 'ms' | 's' | 'm' | 'h'];
  return Number(m[1]) * unit;
}

/** Where the program prints and what environment it reads; a test passes its own. */
export interface ProgramIo {
  stdout(text: string): void;
  stderr(text: string): void;
  env: NodeJS.ProcessEnv;
}

export const processIo: ProgramIo = {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
  env: process.env,
};

export interface CliProgram {
  command: Command;
  /**
   * Parses `argv` (node, script, arguments…), runs the command and reports a failure. `exitCode`
   * is undefined when the command ran and chose none (the process then ends as usual).
   */
  run(argv: readonly string[]): Promise<{ exitCode: number | undefined; failed: boolean }>;
}

/** The commander program with every command; builds it only, parsing nothing. */
export function createProgram(io: ProgramIo = processIo): CliProgram {
  /** Set by a command whose outcome is an exit code (verify). */
  let actionCode: number | undefined;
  const program = new Command('redis-es-sync')
    .description(
      'Keeps Elasticsearch in sync with Redis: producers capture changes, BullMQ carries them, workers bulk-index them.',
    )
    .version(version(), '-V, --version', 'print the version and exit')
    .addOption(new Option('-c, --config <file>', 'mapping rules and settings (YAML or JSON)').env('CONFIG'))
    .option('--redis-url <url>', 'source Redis (env REDIS_URL)')
    .option('--queue-redis-url <url>', 'Redis for the BullMQ queue (env QUEUE_REDIS_URL; default: the source Redis)')
    .option('--elasticsearch-url <url>', 'Elasticsearch (env ELASTICSEARCH_URL)')
    .option('--log-level <level>', 'fatal|error|warn|info|debug|trace (env LOG_LEVEL)')
    .option('--http-port <port>', 'serve dashboard, metrics and probes on this port (env HTTP_PORT; 0 = off)')
    .option('--http-host <host>', 'address to serve them on (env HTTP_HOST; default 127.0.0.1)')
    .addHelpText(
      'after',
      '\nExit codes: 0 ok; 1 out of sync (verify), a dependency down, any runtime failure;\n' +
        '2 invalid configuration, wrong credentials or permissions, an endpoint that is not Redis/Elasticsearch;\n' +
        '64 wrong command line (usage is printed).',
    )
    .showHelpAfterError()
    .configureOutput({ writeOut: (text) => io.stdout(text), writeErr: (text) => io.stderr(text) })
    .exitOverride();

  function flags(): ConfigFlags {
    const o = program.opts<ConfigFlags>();
    return {
      config: o.config,
      redisUrl: o.redisUrl,
      queueRedisUrl: o.queueRedisUrl,
      elasticsearchUrl: o.elasticsearchUrl,
      logLevel: o.logLevel,
      httpPort: o.httpPort,
      httpHost: o.httpHost,
    };
  }

  /** The command being run, so a usage error found in its action prints its usage. */
  let current: Command = program;
  program.hook('preAction', (_root, action) => {
    current = action;
  });

  program
    .command('run')
    .description('producer and worker in one process: snapshot, then follow every change (the main job)')
    .action(() => runService(flags(), { producer: true, worker: true }));

  program
    .command('producer')
    .description('capture changes (keyspace notifications + reconciliation) and enqueue them')
    .action(() => runService(flags(), { producer: true, worker: false }));

  program
    .command('worker')
    .description('index queued changes into Elasticsearch (scale these out)')
    .action(() => runService(flags(), { producer: false, worker: true }));

  program
    .command('snapshot')
    .description('enqueue every existing key once; resumes an interrupted snapshot')
    .option('--restart', 'start over instead of resuming')
    .option('--wait', 'wait until the queue is drained, showing its progress (needs a running worker)')
    .action((opts: { restart?: boolean; wait?: boolean }) => snapshotCommand(flags(), opts));

  program
    .command('reconcile')
    .description('enqueue every key and every document whose key is gone, once (repairs what capture missed)')
    .option('--wait', 'wait until the queue is drained, showing its progress (needs a running worker)')
    .option(
      '--allow-mass-deletion',
      'delete vanished documents even past producer.deletionGuard (after checking the source is the right one)',
    )
    .action((opts: { wait?: boolean; allowMassDeletion?: boolean }) => reconcileCommand(flags(), opts));

  program
    .command('verify')
    .description('compare Redis with Elasticsearch; exit 1 when anything is out of sync')
    .option('--settle-ms <ms>', 'check mismatches again after this pause (changes in flight)', count(), 2000)
    .option('--list <n>', 'print up to n keys of each kind', count(), 20)
    .option('--repair', 'enqueue every key found missing, stale or extra, so a worker rewrites it')
    .action(async (opts: VerifyFlags) => {
      actionCode = await verifyCommand(flags(), opts);
    });

  program
    .command('rebuild')
    .description(
      'build the next generation of the indices behind their aliases, verify it, swap; resumes an interrupted rebuild',
    )
    .option('--index <name>', 'only this index (default: every index the rules write to)')
    .option('--keep', 'keep the old generation after the swap instead of deleting it')
    .option(
      '--grace <duration>',
      'delete the old generation this long after the swap (e.g. 90s, 5m; default rebuild.graceMs)',
      duration,
    )
    .action(async (opts: RebuildFlags) => {
      actionCode = await rebuildCommand(flags(), opts);
    });

  program
    .command('replay')
    .description('enqueue again the refused keys (failure store) and retry the failed jobs matching every given filter')
    .option('--reason <regex>', 'failure reason matches this regular expression')
    .option('--pattern <glob>', "the key (or one of the job's keys) matches this glob")
    .option('--since <time>', 'last refused (failed) at or after this ISO 8601 time')
    .option('--until <time>', 'last refused (failed) at or before this ISO 8601 time')
    .option('--dry-run', 'list and count the matching keys and jobs without replaying them')
    .option('--list <n>', 'print up to n matching keys and jobs', count(), 20)
    .action((opts: ReplayFlags) => replayCommand(flags(), opts));

  program
    .command('failures')
    .description('list the refused keys of the failure store (reason, attempts, first and last seen); changes nothing')
    .option('--reason <regex>', 'failure reason matches this regular expression')
    .option('--pattern <glob>', 'the key matches this glob')
    .option('--since <time>', 'last refused at or after this ISO 8601 time')
    .option('--until <time>', 'last refused at or before this ISO 8601 time')
    .option('--list <n>', 'print up to n keys, most recent first', count(), 100)
    .action((opts: FailuresFlags) => failuresCommand(flags(), opts));

  program
    .command('resync')
    .description('enqueue every key matching a pattern again (a snapshot of a subset)')
    .requiredOption(
      '--pattern <glob>',
      'SCAN MATCH pattern; repeat for several',
      (p: string, prev: string[] | undefined) => [...(prev ?? []), p],
    )
    .option('--wait', 'wait until the queue is drained, showing its progress (needs a running worker)')
    .action((opts: { pattern: string[]; wait?: boolean }) =>
      snapshotCommand(flags(), { restart: true, wait: opts.wait, patterns: opts.pattern, src: 'resync' }),
    );

  program
    .command('status')
    .description(
      'one screen: capture and lease holders, freshness, queue, failed keys, last reconciliation, indices; exit 1 when something needs attention',
    )
    .option('--json', 'print one JSON object instead')
    .option('--max-freshness <s>', 'freshness (seconds) above which a shard needs attention', count(1), 60)
    .option('--no-keys', "skip counting the source's keys per index (a SCAN of the whole source)")
    .action(async (opts: StatusFlags) => {
      actionCode = await statusCommand(flags(), opts);
    });

  program
    .command('partitions')
    .description("print the queue partitions: index, queue name, prefix, wait list (KEDA's listName), cluster slot")
    .action(() => partitionsCommand(flags()));

  program
    .command('dashboard')
    .description(
      'serve only the HTTP surface: bull-board at /queues, /metrics, /healthz, /readyz (port 3000 unless set)',
    )
    .action(() => dashboardCommand(flags()));

  program
    .command('serve')
    .description(
      'serve only the search API: GET /search/:index, GET /doc/:index/:id, /healthz and /readyz (port 3000 unless set)',
    )
    .action(() => serveCommand(flags()));

  for (const cmd of program.commands)
    cmd
      .exitOverride()
      .showHelpAfterError()
      .configureOutput({ writeOut: (text) => io.stdout(text), writeErr: (text) => io.stderr(text) });

  /** Stack traces only when asked for: an expected failure is one readable line. */
  function debugWanted(): boolean {
    const level = (configuredLogLevel(flags(), io.env) ?? '').toLowerCase();
    return level === 'debug' || level === 'trace';
  }

  function report(err: unknown): number {
    if (err instanceof CommanderError) {
      // commander already printed the message (and the usage); --help and --version end here too.
      return err.exitCode === 0 ? EXIT.ok : EXIT.usage;
    }
    const code = exitCodeOf(err);
    let message: string;
    let expected = true;
    if (
      err instanceof DependenciesError ||
      err instanceof DependencyError ||
      err instanceof ConfigError ||
      err instanceof RedisSetupError ||
      err instanceof UsageError
    ) {
      message = err.message;
    } else if (describeSinkFailure(err) !== undefined) {
      message = describeSinkFailure(err) ?? '';
    } else if (err instanceof Error && err.name === 'ReplyError') {
      message = `Redis: ${err.message}`;
    } else {
      expected = false;
      message = err instanceof Error ? err.message : String(err);
    }
    // Whatever a message quotes (a URL, a driver's text) goes out redacted.
    for (const line of redactText(message).split('\n')) io.stderr(`redis-es-sync: ${line}\n`);
    if (err instanceof UsageError) io.stderr(`\n${current.helpInformation()}`);
    // The details (stack, cause) as a JSON line through the redacting logger, never raw.
    if (err instanceof Error && (!expected || debugWanted()))
      createLogger(configuredLogLevel(flags(), io.env) ?? 'info').fatal({ err }, 'stopped by an error');
    if (!expected) io.stderr('redis-es-sync: an unexpected error; please report it with the stack logged above\n');
    return code;
  }

  return {
    command: program,
    async run(argv) {
      actionCode = undefined;
      try {
        await program.parseAsync(argv);
        return { exitCode: actionCode, failed: false };
      } catch (err) {
        return { exitCode: report(err), failed: true };
      }
    },
  };
}
