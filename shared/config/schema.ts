import { z } from 'zod';

const redisUrl = z
  .string()
  .refine((s) => /^rediss?:\/\//.test(s), 'must be a redis:// or rediss:// URL')
  .refine((s) => URL.canParse(s), 'is not a valid URL');

const httpUrl = z
  .string()
  .refine((s) => /^https?:\/\//.test(s), 'must be an http:// or https:// URL')
  .refine((s) => URL.canParse(s), 'is not a valid URL');

/** Elasticsearch's own rules for index names, checked before anything is sent. */
export const indexName = z
  .string()
  .min(1)
  .max(255)
  .regex(/^[^-_+A-Z][^A-Z\\/*?"<>| ,#:]*$/, 'must be lowercase, must not start with - _ + and must not contain \\ / * ? " < > | , # : or spaces');

export const COERCIONS = ['string', 'number', 'integer', 'boolean', 'date', 'json'] as const;
export type Coercion = (typeof COERCIONS)[number];

export const RuleSchema = z
  .object({
    /** Glob over the key name (`user:*`, `cart:{a,b}:*`). */
    match: z.string().min(1).optional(),
    /** Regular expression over the key name; its groups feed the `id` template. */
    regex: z.string().min(1).optional(),
    /** Restrict the rule to these Redis databases. */
    databases: z.array(z.number().int().min(0)).optional(),
    /** Keys matching this rule are not indexed at all. */
    skip: z.boolean().default(false),
    index: indexName.optional(),
    /** `_id` template: `{key}`, `{db}`, `{1}`…, `{name}` from regex groups or glob stars (`{1}`). */
    id: z.string().min(1).optional(),
    /** Parse string values as JSON: true (always; invalid JSON is rejected), false, or `auto` (when it is a JSON object). */
    json: z.union([z.boolean(), z.literal('auto')]).default('auto'),
    fields: z
      .object({
        keep: z.array(z.string().min(1)).optional(),
        rename: z.record(z.string(), z.string().min(1)).optional(),
      })
      .strict()
      .optional(),
    coerce: z.record(z.string(), z.enum(COERCIONS)).optional(),
    /** Path (relative to the config file) of a JS module exporting `transform(doc, context)`. */
    transform: z.string().min(1).optional(),
  })
  .strict()
  .refine((r) => (r.match === undefined) !== (r.regex === undefined), {
    message: 'give exactly one of `match` (glob) or `regex`',
  });

export type RuleConfig = z.infer<typeof RuleSchema>;

const IndexDefinitionSchema = z
  .object({
    settings: z.record(z.string(), z.unknown()).optional(),
    mappings: z.record(z.string(), z.unknown()).optional(),
  })
  .strict();

export const ConfigSchema = z
  .object({
    logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    redis: z
      .object({
        url: redisUrl,
        databases: z.array(z.number().int().min(0)).min(1).default([0]),
        /** SCAN MATCH patterns for snapshots and reconciliation. */
        patterns: z.array(z.string().min(1)).min(1).default(['*']),
      })
      .strict(),
    queue: z
      .object({
        url: redisUrl,
        /** Prefix of every key BullMQ and this tool write; such keys are never captured. */
        prefix: z.string().min(1).default('redis-es-sync'),
        name: z.string().min(1).default('changes'),
        /** How many attempts a job gets for unexpected errors (Elasticsearch outages are retried without limit). */
        attempts: z.number().int().min(1).default(10),
        /** Completed jobs kept for inspection. */
        keepCompleted: z.number().int().min(0).default(1000),
        /** Failed jobs kept for replay. */
        keepFailed: z.number().int().min(0).default(100000),
      })
      .strict(),
    elasticsearch: z
      .object({
        url: httpUrl,
        apiKey: z.string().min(1).optional(),
        username: z.string().min(1).optional(),
        password: z.string().min(1).optional(),
        requestTimeoutMs: z.number().int().positive().default(30000),
      })
      .strict()
      .refine((e) => (e.username === undefined) === (e.password === undefined), {
        message: 'username and password go together',
      }),
    mapping: z
      .object({
        defaultIndex: indexName.default('redis'),
        /** What happens to keys no rule matches: index them with the default document, or skip them. */
        unmatched: z.enum(['index', 'skip']).default('index'),
        rules: z.array(RuleSchema).default([]),
        /** Settings and mappings for indices created at start-up when missing. */
        indices: z.record(indexName, IndexDefinitionSchema).default({}),
      })
      .strict()
      .prefault({}),
    producer: z
      .object({
        /**
         * How changes are captured: keyspace notifications (+ reconciliation), or the replication
         * protocol (the producer acts as a replica; self-hosted Redis/Valkey only).
         */
        mode: z.enum(['notifications', 'replication']).default('notifications'),
        /** Set notify-keyspace-events on the source when flags are missing, instead of stopping. */
        configureNotifications: z.boolean().default(false),
        /** Full reconciliation on this schedule (0 = only after reconnects and at start). */
        reconcileIntervalMs: z.number().int().min(0).default(600000),
        scanCount: z.number().int().positive().default(1000),
        /** Keys per snapshot job. */
        snapshotBatchKeys: z.number().int().positive().default(500),
        /** Changes gathered before one INCRBY + one addBulk. */
        enqueueBatch: z.number().int().positive().default(500),
        enqueueFlushMs: z.number().int().min(0).default(2),
      })
      .strict()
      .prefault({}),
    worker: z
      .object({
        /** Jobs held at once; they wait in the bulk batcher, so this bounds memory, not CPU. */
        concurrency: z.number().int().positive().default(2000),
        bulkMaxDocs: z.number().int().positive().default(1000),
        bulkMaxBytes: z.number().int().positive().default(5 * 1024 * 1024),
        flushMs: z.number().int().min(0).default(10),
        maxInflightBulks: z.number().int().positive().default(2),
        retryBaseMs: z.number().int().positive().default(200),
        retryMaxMs: z.number().int().positive().default(15000),
        lockDurationMs: z.number().int().positive().default(30000),
        stalledIntervalMs: z.number().int().positive().default(30000),
      })
      .strict()
      .prefault({}),
  })
  .strict();

export type AppConfig = z.infer<typeof ConfigSchema>;
export type ConfigInput = z.input<typeof ConfigSchema>;
