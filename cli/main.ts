#!/usr/bin/env node
import { Command, Option } from 'commander';
import type { ConfigFlags } from '../shared/config/load';
import { ConfigError, RedisSetupError } from '../shared/errors';
import { reconcileCommand } from './commands/reconcile';
import { runService } from './commands/run';
import { snapshotCommand } from './commands/snapshot';
import { verifyCommand } from './commands/verify';

const program = new Command('redis-es-sync')
  .description('Keeps Elasticsearch in sync with Redis: producers capture changes, BullMQ carries them, workers bulk-index them.')
  .addOption(new Option('-c, --config <file>', 'mapping rules and settings (YAML or JSON)').env('CONFIG'))
  .option('--redis-url <url>', 'source Redis (env REDIS_URL)')
  .option('--queue-redis-url <url>', 'Redis for the BullMQ queue (env QUEUE_REDIS_URL; default: the source Redis)')
  .option('--elasticsearch-url <url>', 'Elasticsearch (env ELASTICSEARCH_URL)')
  .option('--log-level <level>', 'fatal|error|warn|info|debug|trace (env LOG_LEVEL)')
  .showHelpAfterError();

function flags(): ConfigFlags {
  const o = program.opts<ConfigFlags>();
  return { config: o.config, redisUrl: o.redisUrl, queueRedisUrl: o.queueRedisUrl, elasticsearchUrl: o.elasticsearchUrl, logLevel: o.logLevel };
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
  .action(async (opts: { settleMs: string; list: string }) => {
    process.exitCode = await verifyCommand(flags(), opts);
  });

program.parseAsync(process.argv).catch((err: unknown) => {
  if (err instanceof ConfigError || err instanceof RedisSetupError) {
    process.stderr.write(`redis-es-sync: ${err.message}\n`);
    process.exit(2);
  }
  process.stderr.write(`redis-es-sync: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
