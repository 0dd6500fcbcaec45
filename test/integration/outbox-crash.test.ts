import { Redis } from 'ioredis';
import { unfinishedJobs } from '../../shared/core/queue';
import type { ConfigInput } from '../../producers/capture/registry';
import { STREAM, outboxDrained, pendingCount, startOutboxServers } from '../support/outbox';
import {
  exited,
  spawnCli,
  startPipeline,
  testConfigInput,
  waitFor,
  waitInSync,
  type TestPipeline,
  type TestServers,
} from '../support/pipeline';
import { seededRandom } from '../support/random';

const WRITES = 40000;
const KEYS_PER_TYPE = 800;
const IN_FLIGHT = 200;

/** One application write of a mixed workload: the data change and its outbox entry in one MULTI. */
function write(redis: Redis, rnd: () => number, i: number): Promise<unknown> {
  const n = Math.floor(rnd() * KEYS_PER_TYPE);
  const m = redis.multi();
  let keys: string[];
  switch (Math.floor(rnd() * 8)) {
    case 0:
      keys = [`str:${n}`];
      m.set(keys[0]!, `v${i}`);
      break;
    case 1:
      keys = [`hash:${n}`];
      m.hset(keys[0]!, `f${i % 5}`, String(i));
      break;
    case 2:
      keys = [`list:${n}`];
      m.rpush(keys[0]!, String(i)).ltrim(keys[0]!, -5, -1);
      break;
    case 3:
      keys = [`set:${n}`];
      m.sadd(keys[0]!, String(i % 13));
      break;
    case 4:
      keys = [`zset:${n}`];
      m.zadd(keys[0]!, i, `m${i % 7}`);
      break;
    case 5:
      keys = [`str:${n}`, `hash:${n}`];
      m.set(keys[0]!, `pair ${i}`).hset(keys[1]!, 'pair', String(i));
      break;
    case 6: {
      const type = ['str', 'hash', 'list', 'set', 'zset'][n % 5];
      keys = [`${type}:${n}`];
      m.del(keys[0]!);
      break;
    }
    default:
      keys = [`json:${n}`];
      m.set(keys[0]!, JSON.stringify({ i, even: i % 2 === 0 }));
  }
  m.xadd(STREAM, '*', ...keys.flatMap((k) => ['key', k]));
  return m.exec();
}

/**
 * The acceptance test for this mode: tens of thousands of mixed writes, the producer
 * SIGKILLed in the middle while it holds unacknowledged entries, restarted under the same
 * consumer name; at the end verify finds nothing out of sync.
 */
describe('outbox producer killed mid-workload', () => {
  let servers: TestServers;
  let redis: Redis;
  let worker: TestPipeline | undefined;
  const children: ReturnType<typeof spawnCli>[] = [];

  beforeAll(async () => {
    servers = await startOutboxServers('outbox-crash');
    redis = new Redis(servers.source.url);
  });

  afterAll(async () => {
    for (const c of children) c.kill('SIGKILL');
    await Promise.all(children.map((c) => exited(c)));
    await worker?.stop();
    redis.disconnect();
    await servers.stop();
  });

  it('loses nothing: the unacknowledged entries are delivered again after the restart', async () => {
    const input: ConfigInput = testConfigInput(servers, {
      logLevel: 'info',
      producer: { mode: 'outbox', outbox: { consumer: 'producer-1', blockMs: 500, claimIdleMs: 3_600_000 } },
    });
    worker = await startPipeline({ ...input, logLevel: 'silent' }, { producer: false, worker: true });
    const first = spawnCli(input, ['producer']);
    children.push(first);
    await waitFor(
      'the group',
      () => redis.exists(STREAM),
      (n) => n === 1,
      30000,
      50,
    );

    const rnd = seededRandom(42);
    let written = 0;
    const writeUpTo = async (target: number): Promise<void> => {
      while (written < target) {
        const batch: Promise<unknown>[] = [];
        for (let k = 0; k < IN_FLIGHT && written < target; k++) batch.push(write(redis, rnd, written++));
        await Promise.all(batch);
      }
    };

    await writeUpTo(WRITES / 3);
    // Freeze the producer until it is caught holding entries it read but has not acknowledged, then kill it.
    let held = 0;
    for (let attempt = 0; attempt < 200 && held === 0; attempt++) {
      await writeUpTo(written + 100);
      first.kill('SIGSTOP');
      held = await pendingCount(redis, 'producer-1');
      if (held === 0) first.kill('SIGCONT');
    }
    expect(held).toBeGreaterThan(0);
    first.kill('SIGKILL');
    await exited(first);
    expect(await pendingCount(redis, 'producer-1')).toBe(held);

    // Changes go on while no producer runs; they wait in the stream.
    await writeUpTo((2 * WRITES) / 3);
    const second = spawnCli(input, ['producer']);
    children.push(second);
    await writeUpTo(WRITES);

    await waitFor(
      'the outbox drained',
      () => outboxDrained(redis),
      (d) => d,
      60000,
      100,
    );
    await waitFor(
      'the queue drained',
      () => unfinishedJobs(worker!.ctx.queues().partitions[0]!),
      (n) => n === 0,
      60000,
      100,
    );
    await waitInSync(worker.ctx, 60000);

    const redelivered = second
      .output()
      .split('\n')
      .filter((line) => line.includes('redelivered own unacknowledged entries'))
      .reduce((sum, line) => sum + (JSON.parse(line) as { entries: number }).entries, 0);
    expect(redelivered).toBeGreaterThanOrEqual(held);

    // Graceful stop: the restarted producer exits cleanly with nothing left unacknowledged.
    second.kill('SIGTERM');
    expect(await exited(second)).toBe(0);
    expect(await pendingCount(redis)).toBe(0);
  });
});
