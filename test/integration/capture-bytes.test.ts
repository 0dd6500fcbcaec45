import { Redis } from 'ioredis';
import type { LeasedProducer } from '../../producers/leased-producer';
import type { CaptureHost } from '../../producers/capture/host';
import type { NotificationMode } from '../../producers/capture/notifications/mode';
import { keyToBytes } from '../../shared/core/bytes';
import { captureModeSource, type CaptureSource } from '../../shared/core/queue';
import {
  startPipeline,
  startServers,
  testConfigInput,
  waitFor,
  type TestPipeline,
  type TestServers,
} from '../support/pipeline';

const BINARY = Buffer.from([0x75, 0x3a, 0xff, 0xfe]);
const EMPTY = Buffer.alloc(0);

/** A producer alone, so its jobs stay in the queue to be read: what capture hands on, byte for byte. */
describe('key names that are not UTF-8, and the empty name, on a real server', () => {
  let servers: TestServers;
  let redis: Redis;
  let pipeline: TestPipeline | undefined;

  beforeAll(async () => {
    servers = await startServers('capture-bytes');
    redis = new Redis(servers.source.url);
    await redis.set(BINARY, 'before');
    await redis.set(EMPTY, 'before');
    await redis.set('text', 'before');
    // The test compares every captured key with the ones it wrote: no heartbeat key beside them.
    pipeline = await startPipeline(testConfigInput(servers, { producer: { canary: { enabled: false } } }), {
      producer: true,
      worker: false,
    });
  });

  afterAll(async () => {
    await pipeline?.stop();
    redis.disconnect();
    await servers.stop();
  });

  /** Every key of the queued jobs from `src`, as the bytes it stands for. */
  async function queued(src: CaptureSource): Promise<Buffer[]> {
    const jobs = await pipeline!.ctx.queues().partitions[0]!.getJobs(['waiting', 'prioritized', 'delayed', 'active']);
    return jobs.filter((j) => j.data.src === src).flatMap((j) => j.data.keys.map(keyToBytes));
  }
  const sorted = (keys: Buffer[]): Buffer[] => [...keys].sort((a, b) => Buffer.compare(a, b));

  it('the initial SCAN enqueues every key with its exact bytes', async () => {
    const producer = (pipeline!.service.producer as LeasedProducer).current as CaptureHost<NotificationMode>;
    await producer.idle();
    expect(sorted(await queued('reconcile'))).toEqual(sorted([BINARY, EMPTY, Buffer.from('text')]));
  });

  it('keyevent notifications carry the exact bytes', async () => {
    await redis.set(BINARY, 'after');
    await redis.set(EMPTY, 'after');
    await redis.del(Buffer.from([0xc3, 0x28])); // no such key: no event
    await redis.set(Buffer.from([0xc3, 0x28]), 'after');
    const keys = await waitFor(
      'the notifications to be enqueued',
      () => queued(captureModeSource('notification')),
      (k) => k.length >= 3,
      10000,
    );
    expect(sorted(keys)).toEqual(sorted([BINARY, EMPTY, Buffer.from([0xc3, 0x28])]));
  });
});
