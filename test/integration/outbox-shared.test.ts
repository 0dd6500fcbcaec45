import { Redis } from 'ioredis';
import type { ConfigInput } from '../../producers/capture/registry';
import { expectNothingMissing, killAll, type Cli } from '../support/handover';
import { STREAM, outboxDrained, startOutboxServers } from '../support/outbox';
import {
  exited,
  spawnCli,
  startPipeline,
  testConfigInput,
  waitFor,
  type TestPipeline,
  type TestServers,
} from '../support/pipeline';
import { getFreePort } from '../support/ports';

const KEYS = 2000;

/** The changes a producer captured so far, from its own /metrics. */
async function captured(port: number): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  return text
    .split('\n')
    .filter((l) => l.startsWith('redis_es_sync_changes_captured_total'))
    .reduce((n, l) => n + Number(l.split(' ').at(-1)), 0);
}

/**
 * The outbox mode's scale-out: producers with `producer.outbox.shareGroup` all read the one
 * consumer group, each as a consumer of its own and with no lease, so the stream's entries are
 * spread over them. One is killed with SIGKILL while it holds unacknowledged entries; the other
 * takes them over after `claimIdleMs`, and nothing is missing at the end.
 */
describe('outbox mode: two producers sharing the consumer group', () => {
  let servers: TestServers;
  let redis: Redis;
  let worker: TestPipeline | undefined;
  const children: Cli[] = [];

  beforeAll(async () => {
    servers = await startOutboxServers('outbox-shared');
    redis = new Redis(servers.source.url);
  });

  afterAll(async () => {
    await killAll(children);
    await worker?.stop();
    redis?.disconnect();
    await servers?.stop();
  });

  /** A write and its entry in one MULTI; every 9th deletes the key instead. */
  const write = (i: number): Promise<unknown> => {
    const key = `item:${i % KEYS}`;
    const m = redis.multi();
    if (i % 9 === 0) m.del(key);
    else m.set(key, `v${i}`);
    return m.xadd(STREAM, '*', 'key', key).exec();
  };

  it('spreads the entries over both, and a killed one’s entries are taken over: nothing lost', async () => {
    const base = testConfigInput(servers, {
      producer: { mode: 'outbox', outbox: { shareGroup: true, claimIdleMs: 2000, blockMs: 200, batch: 50 } },
    });
    worker = await startPipeline(base, { producer: false, worker: true });
    const ports = [await getFreePort(), await getFreePort()] as const;
    const spawn = (consumer: string, port: number): Cli => {
      const input: ConfigInput = {
        ...base,
        logLevel: 'info',
        http: { port },
        producer: { ...base.producer, outbox: { ...base.producer?.outbox, consumer } },
      };
      const c = spawnCli(input, ['producer']);
      children.push(c);
      return c;
    };
    const [a, b] = [spawn('shared-a', ports[0]), spawn('shared-b', ports[1])];
    const reading = (c: Cli): boolean => c.output().includes('reading the outbox stream');
    await waitFor('both producers reading', async () => reading(a) && reading(b), Boolean, 60000);
    // Neither stands by behind a lease.
    expect(a.output() + b.output()).not.toContain('standby');

    let i = 0;
    const burst = async (n: number): Promise<void> => {
      const end = i + n;
      while (i < end) {
        await Promise.all(Array.from({ length: 20 }, () => write(i++)));
      }
    };
    await burst(6000);
    // Both consumers were given entries.
    const counts = await waitFor(
      'both producers to capture',
      async () => Promise.all([captured(ports[0]), captured(ports[1])]),
      ([x, y]) => x > 0 && y > 0,
      30000,
    );
    expect(counts[0] + counts[1]).toBeGreaterThan(0);

    // SIGKILL one in the middle of a burst: what it read and had not acknowledged stays pending, under its name.
    const writing = burst(6000);
    await new Promise((r) => setTimeout(r, 100));
    b.kill('SIGKILL');
    await exited(b);
    await writing;
    await burst(2000);

    await waitFor('the group drained', () => outboxDrained(redis), Boolean, 90000, 200);
    await expectNothingMissing(worker);
  }, 300000);
});
