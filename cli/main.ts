#!/usr/bin/env node
import { Command, Option } from 'commander';
import type { ConfigFlags } from '../shared/config/load';
import { ConfigError, RedisSetupError } from '../shared/errors';
import { reconcileCommand } from './commands/reconcile';
import { dashboardCommand } from './commands/dashboard';
import { serveCommand } from './commands/serve';
import { failuresCommand, replayCommand, type FailuresFlags, type ReplayFlags } from './commands/replay';
import { runService } from './commands/run';
import { snapshotCommand } from './commands/snapshot';
import { verifyCommand, type VerifyFlags } from './commands/verify';

const program = new Command('redis-es-sync')
  .description('Keeps Elasticsearch in sync with Redis: producers capture changes, BullMQ carries them, workers bulk-index them.')
  .addOption(new Option('-c, --config <file>', 'mapping rules and settings (YAML or JSON)').env('CONFIG'))
  .option('--redis-url <url>', 'source Redis (env REDIS_URL)')
  .option('--queue-redis-url <url>', 'Redis for the BullMQ queue (env QUEUE_REDIS_URL; default: the source Redis)')
  .option('--elasticsearch-url <url>', 'Elasticsearch (env ELASTICSEARCH_URL)')
  .option('--log-level <level>', 'fatal|error|warn|info|debug|trace (env LOG_LEVEL)')
  .option('--http-port <port>', 'serve dashboard, metrics and probes on this port (env HTTP_PORT; 0 = off)')
  .option('--http-host <host>', 'address to serve them on (env HTTP_HOST; default 127.0.0.1)')
  .showHelpAfterError();

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
  .option('--wait', 'wait until the queue is drained (needs a running worker)')
  .action((opts: { restart?: boolean; wait?: boolean }) => snapshotCommand(flags(), opts));

program
  .command('reconcile')
  .description('enqueue every key and every document whose key is gone, once (repairs what capture missed)')
  .option('--wait', 'wait until the queue is drained (needs a running worker)')
  .action((opts: { wait?: boolean }) => reconcileCommand(flags(), opts));

program
  .command('verify')
  .description('compare Redis with Elasticsearch; exit 1 when anything is out of sync')
  .option('--settle-ms <ms>', 'check mismatches again after this pause (changes in flight)', '2000')
  .option('--list <n>', 'print up to n keys of each kind', '20')
  .option('--repair', 'enqueue every key found missing, stale or extra, so a worker rewrites it')
  .action(async (opts: VerifyFlags) => {
    process.exitCode = await verifyCommand(flags(), opts);
  });

program
  .command('replay')
  .description('enqueue again the refused keys (failure store) and retry the failed jobs matching every given filter')
  .option('--reason <regex>', 'failure reason matches this regular expression')
  .option('--pattern <glob>', 'the key (or one of the job\'s keys) matches this glob')
  .option('--since <time>', 'last refused (failed) at or after this ISO 8601 time')
  .option('--until <time>', 'last refused (failed) at or before this ISO 8601 time')
  .option('--dry-run', 'list and count the matching keys and jobs without replaying them')
  .option('--list <n>', 'print up to n matching keys and jobs', '20')
  .action((opts: ReplayFlags) => replayCommand(flags(), { ...opts, list: Number(opts.list) }));

program
  .command('failures')
  .description('list the refused keys of the failure store (reason, attempts, first and last seen); changes nothing')
  .option('--reason <regex>', 'failure reason matches this regular expression')
  .option('--pattern <glob>', 'the key matches this glob')
  .option('--since <time>', 'last refused at or after this ISO 8601 time')
  .option('--until <time>', 'last refused at or before this ISO 8601 time')
  .option('--list <n>', 'print up to n keys, most recent first', '100')
  .action((opts: FailuresFlags) => failuresCommand(flags(), { ...opts, list: Number(opts.list) }));

program
  .command('resync')
  .description('enqueue every key matching a pattern again (a snapshot of a subset)')
  .requiredOption('--pattern <glob>', 'SCAN MATCH pattern; repeat for several', (p: string, prev: string[] = []) => [...prev, p])
  .option('--wait', 'wait until the queue is drained (needs a running worker)')
  .action((opts: { pattern: string[]; wait?: boolean }) =>
    snapshotCommand(flags(), { restart: true, wait: opts.wait, patterns: opts.pattern, src: 'resync' }),
  );

program
  .command('dashboard')
  .description('serve only the HTTP surface: bull-board at /queues, /metrics, /healthz, /readyz (port 3000 unless set)')
  .action(() => dashboardCommand(flags()));

program
  .command('serve')
  .description('serve only the search API: GET /search/:index, GET /doc/:index/:id and /healthz (port 3000 unless set)')
  .action(() => serveCommand(flags()));

program.parseAsync(process.argv).catch((err: unknown) => {
  if (err instanceof ConfigError || err instanceof RedisSetupError) {
    process.stderr.write(`redis-es-sync: ${err.message}\n`);
    process.exit(2);
  }
  process.stderr.write(`redis-es-sync: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
