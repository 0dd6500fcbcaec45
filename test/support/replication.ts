import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ConfigInput } from '../../producers/capture/registry';
import { startServers, testConfigInput, type TestServers } from './pipeline';

/**
 * A source Redis on its default replication settings (repl-diskless-sync yes with its 5 s
 * delay: a full resync waits that long, as it does for users), and a queue Redis. The source
 * writes its replication RDB files into a temporary directory, never into the working
 * directory, where every later redis-server would load them.
 */
export async function replicationServers(indexPrefix: string, sourceArgs: string[] = []): Promise<TestServers> {
  const dir = await mkdtemp(join(tmpdir(), 'res-repl-'));
  const servers = await startServers(indexPrefix, { notify: false, sourceArgs: ['--dir', dir, ...sourceArgs] });
  return {
    ...servers,
    async stop() {
      await servers.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export function replicationInput(servers: TestServers, extra: Partial<ConfigInput> = {}): ConfigInput {
  const base = testConfigInput(servers, extra);
  return {
    ...base,
    redis: { url: servers.source.url, databases: [0, 1] },
    producer: { ...base.producer, mode: 'replication' },
  };
}
