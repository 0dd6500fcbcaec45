import { defineCaptureModeConfig } from '../../../../producers/capture/config';
import { CaptureHost } from '../../../../producers/capture/host';
import type { CaptureContext, CaptureMode, CapturePlugin } from '../../../../producers/capture/types';
import { KeyRouter } from '../../../../shared/core/mapping/router';
import type { SyncQueues } from '../../../../shared/core/queue';
import { ConfigSchema } from '../../../../producers/capture/registry';
import { LeaseLostError } from '../../../../shared/platform/errors';
import { createLogger } from '../../../../shared/platform/logger';
import type { RedisClient, SourceRedis } from '../../../../shared/platform/redis';
import type { Sink } from '../../../../shared/sink/port';

/** A mode that only records what the host asks of it, in order. */
class RecordingMode implements CaptureMode {
  readonly calls: string[] = [];
  reconcileRequests = 0;
  constructor(readonly ctx: CaptureContext) {}
  async start(): Promise<void> {
    this.calls.push('start');
  }
  async stop(): Promise<void> {
    this.calls.push('stop');
  }
  async close({ leaseLost }: { leaseLost?: LeaseLostError }): Promise<void> {
    this.calls.push(leaseLost ? 'close: lease lost' : 'close');
  }
  async idle(): Promise<void> {
    this.calls.push('idle');
  }
  requestReconcile(): void {
    this.reconcileRequests++;
  }
}

const config = ConfigSchema.parse({
  redis: { url: 'redis://source.example:6379' },
  queue: { url: 'redis://queue.example:6379' },
  elasticsearch: { url: 'http://es.example:9200' },
});
// Nothing here reaches a server: the sink is flushed empty and the mode runs its own reconciliations.
const deps = {
  config,
  source: {} as SourceRedis,
  // The version counter registers its script at construction; nothing calls it.
  queueRedis: { defineCommand: () => undefined } as unknown as RedisClient,
  // Neither is used: the host only hands them to the mode, and this mode ignores them.
  queue: {} as unknown as SyncQueues,
  searchSink: {} as unknown as Sink,
  router: KeyRouter.fromConfig(config.mapping, process.cwd(), config.redis.databases),
  logger: createLogger('silent'),
};

function host(everyMs = 0): CaptureHost<RecordingMode> {
  const plugin: CapturePlugin<RecordingMode> = {
    ...defineCaptureModeConfig({ name: 'recording', source: 'recording', summary: 'a recording', fields: {} }),
    reconcileEveryMs: () => everyMs,
    create: (ctx) => new RecordingMode(ctx),
  };
  return new CaptureHost(plugin, deps);
}

describe('CaptureHost', () => {
  it('gives the mode its own sink and, without a lease, a fence that writes plainly', () => {
    const h = host();
    expect(h.mode.ctx.sink).toBe(h.sink);
    expect(h.mode.ctx.fence).toBeDefined();
    expect(h.mode.ctx.reconcileSettings).toMatchObject({
      databases: config.redis.databases,
      prefix: config.queue.prefix,
    });
  });

  it('stops in order: the mode stops learning, the sink is flushed, then the mode closes', async () => {
    const h = host();
    const flush = jest.spyOn(h.sink, 'flush').mockImplementation(async () => {
      h.mode.calls.push('flush');
    });
    await h.start();
    await h.idle();
    await h.stop();
    expect(h.mode.calls).toEqual(['start', 'idle', 'stop', 'flush', 'close']);
    flush.mockRestore();
  });

  it('tells the mode when the last flush was refused for a lost lease, and throws any other failure', async () => {
    const lost = host();
    jest.spyOn(lost.sink, 'flush').mockRejectedValue(new LeaseLostError('fenced out'));
    await lost.start();
    await lost.stop();
    expect(lost.mode.calls).toEqual(['start', 'stop', 'close: lease lost']);

    const broken = host();
    jest.spyOn(broken.sink, 'flush').mockRejectedValue(new Error('queue Redis down'));
    await broken.start();
    await expect(broken.stop()).rejects.toThrow('queue Redis down');
    expect(broken.mode.calls).toEqual(['start', 'stop']);
  });

  it('runs the schedule while capturing, and asks for nothing once stopping', async () => {
    const h = host(10);
    await h.start();
    // However slow the machine, the 10 ms schedule asks again and again while capturing.
    while (h.mode.reconcileRequests < 2) await new Promise((r) => setTimeout(r, 10));
    await h.stop();
    const asked = h.mode.reconcileRequests;
    h.requestReconcile();
    await new Promise((r) => setTimeout(r, 30));
    expect(h.mode.reconcileRequests).toBe(asked);
  });
});
