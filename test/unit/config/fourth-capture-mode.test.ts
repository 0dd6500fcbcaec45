import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { composeConfigSchema, defineCaptureModeConfig, type ModeConfig } from '../../../producers/capture/config';
import { CAPTURE_MODES, CAPTURE_SOURCES, ConfigSchema } from '../../../producers/capture/registry';
import type { CaptureContext, CaptureMode, CapturePlugin } from '../../../producers/capture/types';
import { ConfigError } from '../../../shared/platform/errors';
import { loadConfig } from '../../../shared/platform/config/load';

/**
 * A throwaway fourth mode, registered the way the registry registers the real ones: its
 * declaration (what `<mode>/config.ts` exports) spread into its plugin (`<mode>/plugin.ts`).
 */
const pollingConfig = defineCaptureModeConfig({
  name: 'polling',
  source: 'poll',
  summary: 'polling every key (a test mode)',
  fields: {
    polling: z
      .object({
        everyMs: z.number().int().positive().default(1000).describe('How often every key is read again, in ms.'),
      })
      .strict()
      .prefault({})
      .describe('`mode: polling`: the test mode.'),
  },
});

type PollingConfig = ModeConfig<typeof pollingConfig>;

/** Learns nothing by itself: the host's scheduled reconciliation is how it captures. */
class PollingMode implements CaptureMode {
  readonly everyMs: number;
  constructor(ctx: CaptureContext<PollingConfig>) {
    this.everyMs = ctx.config.producer.polling.everyMs;
  }
  start(): Promise<void> {
    return Promise.resolve();
  }
  stop(): Promise<void> {
    return Promise.resolve();
  }
}

const polling: CapturePlugin<PollingMode, typeof pollingConfig> = {
  ...pollingConfig,
  reconcileEveryMs: (config) => config.producer.polling.everyMs,
  create: (ctx) => new PollingMode(ctx),
};

const withPolling = composeConfigSchema([...CAPTURE_MODES, polling]);
const REQUIRED = {
  redis: { url: 'redis://source.example:6379' },
  queue: { url: 'redis://source.example:6379' },
  elasticsearch: { url: 'http://es.example:9200' },
};

/** Compile-time only: a mode's configuration has its own slice, not another mode's. */
export function pollingReadsNoOutbox(config: PollingConfig): unknown {
  // @ts-expect-error the polling mode's configuration has no producer.outbox
  return config.producer.outbox;
}

describe('a fourth capture mode, registered like the others', () => {
  it("is accepted by the composed schema as producer.mode, with its own slice's values and defaults", () => {
    const config = withPolling.parse({ ...REQUIRED, producer: { mode: 'polling', polling: { everyMs: 250 } } });
    expect(config.producer.mode).toBe('polling');
    expect(config.producer.polling).toEqual({ everyMs: 250 });
    // The full configuration is what the mode's code is handed, typed with its slice.
    expect(polling.reconcileEveryMs(config)).toBe(250);
    expect(withPolling.parse({ ...REQUIRED, producer: { mode: 'polling' } }).producer.polling.everyMs).toBe(1000);
  });

  it("validates its slice like any other field, and keeps the other modes' slices", () => {
    const bad = withPolling.safeParse({ ...REQUIRED, producer: { mode: 'polling', polling: { everyMs: -1 } } });
    expect(bad.success).toBe(false);
    expect(bad.error?.issues.map((i) => i.path.join('.'))).toEqual(['producer.polling.everyMs']);
    const outbox = withPolling.parse({ ...REQUIRED, producer: { mode: 'outbox', outbox: { batch: 7 } } });
    expect(outbox.producer.outbox.batch).toBe(7);
    expect(outbox.producer.polling.everyMs).toBe(1000);
  });

  it("names it in producer.mode's description, after the registry's modes, and keeps their default", () => {
    const mode = withPolling.shape.producer.unwrap().shape.mode;
    expect(mode.unwrap().options).toEqual(['notifications', 'outbox', 'replication', 'polling']);
    expect(mode.description).toMatch(/the replication protocol \(.*\), or polling every key \(a test mode\)\.$/);
    expect(withPolling.parse(REQUIRED).producer.mode).toBe('notifications');
  });

  it('loads through the platform loader, which takes the schema it is given', () => {
    const file = join(mkdtempSync(join(tmpdir(), 'res-mode-')), 'sync.yml');
    writeFileSync(file, 'producer:\n  mode: polling\n  polling:\n    everyMs: 40\n');
    const env = { REDIS_URL: REQUIRED.redis.url, ELASTICSEARCH_URL: REQUIRED.elasticsearch.url };
    expect(loadConfig(withPolling, { config: file }, env).config.producer.polling.everyMs).toBe(40);
    // The registry's own schema does not know the test mode.
    expect(() => loadConfig(ConfigSchema, { config: file }, env)).toThrow(ConfigError);
  });

  it('is refused when its name, job source or fields are already taken', () => {
    const clash = (over: Partial<Parameters<typeof defineCaptureModeConfig>[0]>): (() => unknown) => {
      const mode = defineCaptureModeConfig({ ...pollingConfig, ...over });
      return () => composeConfigSchema([...CAPTURE_MODES, mode]);
    };
    expect(clash({ name: 'outbox', source: 'other' })).toThrow('capture mode outbox is registered twice');
    expect(clash({ source: 'outbox' })).toThrow("capture modes outbox and polling both name their jobs' source outbox");
    expect(clash({ fields: { outbox: z.string().optional() } })).toThrow(
      'capture modes outbox and polling both define producer.outbox',
    );
    expect(clash({ fields: { leaseTtlMs: z.number().optional() } })).toThrow(
      "a capture mode's field producer.leaseTtlMs is already a shared producer field",
    );
  });

  it("leaves the registry's modes and job sources as they are", () => {
    expect(CAPTURE_SOURCES).toEqual(['notification', 'outbox', 'replication']);
    expect(ConfigSchema.safeParse({ ...REQUIRED, producer: { mode: 'polling' } }).success).toBe(false);
  });
});
