import { captureConfigIssues, ConfigSchema } from '../../producers/capture/registry';
import { partitionQueues, partitionSlot } from '../../shared/core/partitions';
import { loadConfig, type ConfigFlags } from '../../shared/platform/config/load';

/**
 * `partitions`: the queue partitions the configuration makes, one line each (index, BullMQ
 * queue name, BullMQ prefix, wait list, cluster slot), for KEDA triggers and dashboards.
 * Reads only the configuration: it connects to nothing.
 */
export function partitionsCommand(flags: ConfigFlags): void {
  const { config } = loadConfig(ConfigSchema, flags, process.env, [captureConfigIssues]);
  const { prefix, name, partitions } = config.queue;
  for (const q of partitionQueues(prefix, name, partitions))
    process.stdout.write(`${q.index}\t${q.name}\t${q.prefix}\t${q.prefix}:${q.name}:wait\tslot ${partitionSlot(q)}\n`);
}
