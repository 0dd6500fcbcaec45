#!/usr/bin/env node
import { Command, Option } from 'commander';
import type { ConfigFlags } from '../shared/config/load';
import { errors } from '@elastic/elasticsearch';
import { describeEsError } from '../shared/elasticsearch';
import { ConfigError, RedisSetupError } from '../shared/errors';
import { createLogger, redactText } from '../shared/logger';
import { reconcileCommand } from './commands/reconcile';
import { dashboardCommand } from './commands/dashboard';
import { serveCommand } from './commands/serve';
import { replayCommand, type ReplayFlags } from './commands/replay';
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
  .option('--allow-mass-deletion', 'delete vanished documents even past producer.deletionGuard (after checking the source is the right one)')
  .action((opts: { wait?: boolean; allowMassDeletion?: boolean }) => reconcileCommand(flags(), opts));

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
  .description('retry failed jobs matching every given filter (as the dashboard\'s retry does)')
  .option('--reason <regex>', 'failure reason matches this regular expression')
  .option('--pattern <glob>', 'one of the job\'s keys matches this glob')
  .option('--since <time>', 'failed at or after this ISO 8601 time')
  .option('--until <time>', 'failed at or before this ISO 8601 time')
  .option('--dry-run', 'list and count the matching jobs without retrying them')
  .option('--list <n>', 'print up to n matching jobs', '20')
  .action((opts: ReplayFlags) => replayCommand(flags(), opts));

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
  .description('serve only the search API: GET /search/:index, GET /doc/:index/:id, /healthz and /readyz (port 3000 unless set)')
  .action(() => serveCommand(flags()));

/** A HEAD request's error has no body and an empty message: then the status tells what happened. */
function describeError(err: unknown): string {
  if (err instanceof errors.ResponseError) {
    const detail = describeEsError(err);
    return err.statusCode === 401 ? `Elasticsearch refused the credentials (${detail.trim()}): check ELASTICSEARCH_API_KEY or ELASTICSEARCH_USERNAME/PASSWORD` : `Elasticsearch: ${detail}`;
  }
  return err instanceof Error ? err.message || err.name : String(err);
}

program.parseAsync(process.argv).catch((err: unknown) => {
  if (err instanceof ConfigError || err instanceof RedisSetupError) {
    process.stderr.write(`redis-es-sync: ${err.message}\n`);
    process.exit(2);
  }
  // The details (stack, cause) as a JSON line through the redacting logger; the human line is one line.
  createLogger(process.env.LOG_LEVEL ?? 'info').fatal({ err }, 'stopped by an error');
  const message = redactText(describeError(err)).replace(/\s*\n\s*/g, '; ');
  process.stderr.write(`redis-es-sync: ${message}\n`);
  process.exit(1);
});
