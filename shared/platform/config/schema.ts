import { z } from 'zod';

const redisUrl = z
  .string()
  .refine((s) => /^rediss?:\/\//.test(s), 'must be a redis:// or rediss:// URL')
  .refine((s) => URL.canParse(s), 'is not a valid URL');

/** `host:port` of a Redis Sentinel. */
const hostPort = z.string().regex(/^[^\s:]+:\d{1,5}$/, 'must be host:port');

/** A Redis Cluster: any reachable nodes; the rest of the topology is discovered from them. */
const ClusterSchema = z
  .object({
    /** Seed nodes as redis:// or rediss:// URLs; credentials and TLS of the first apply to every node. */
    nodes: z.array(redisUrl).min(1),
  })
  .strict();

/** A master followed through Redis Sentinel. */
const SentinelSchema = z
  .object({
    /** Sentinels as host:port. */
    sentinels: z.array(hostPort).min(1),
    /** The master group name the sentinels monitor. */
    name: z.string().min(1),
    /** Password (and ACL user) of the Redis servers themselves. */
    username: z.string().min(1).optional(),
    password: z.string().min(1).optional(),
    /** Password of the sentinels, when they require one. */
    sentinelPassword: z.string().min(1).optional(),
    tls: z.boolean().default(false),
  })
  .strict();

export type ClusterConfig = z.infer<typeof ClusterSchema>;
export type SentinelConfig = z.infer<typeof SentinelSchema>;

/** Exactly one way to reach a Redis: `url` (standalone), `cluster` or `sentinel`. */
function oneEndpoint(section: { url?: string; cluster?: unknown; sentinel?: unknown }, ctx: z.RefinementCtx): void {
  const given = (['url', 'cluster', 'sentinel'] as const).filter((k) => section[k] !== undefined);
  if (given.length === 0) {
    // Reported like a missing required field, so the loader names the variable that sets it.
    ctx.addIssue({ code: 'invalid_type', expected: 'string', input: undefined, path: ['url'], message: 'is required' });
  } else if (given.length > 1) {
    ctx.addIssue({ code: 'custom', path: [given[1]], message: `give only one of url, cluster or sentinel (got ${given.join(' and ')})` });
  }
}

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

/** Environment variables and flags arrive as strings. */
function numberFromString(v: unknown): unknown {
  return typeof v === 'string' && v.trim() !== '' && !Number.isNaN(Number(v)) ? Number(v) : v;
}

function booleanFromString(v: unknown): unknown {
  if (v === 'true' || v === '1') return true;
  if (v === 'false' || v === '0' || v === '') return false;
  return v;
}

const BasicAuthSchema = z.object({ username: z.string().min(1), password: z.string().min(1) }).strict();

/** One HTTP role's credential: a bearer token, basic credentials (browsers prompt for them), or both. */
const HttpCredentialSchema = z
  .object({ token: z.string().min(1).optional(), basic: BasicAuthSchema.optional() })
  .strict()
  .refine((c) => c.token !== undefined || c.basic !== undefined, { message: 'give token, basic or both' });

export type HttpCredential = z.infer<typeof HttpCredentialSchema>;
export const HTTP_ROLES = ['search', 'viewer', 'operator'] as const;
export type HttpRole = (typeof HTTP_ROLES)[number];

interface HttpCredentialsInput {
  authToken?: string;
  basicAuth?: { username: string; password: string };
  search?: HttpCredential;
  viewer?: HttpCredential;
  operator?: HttpCredential;
  allowDestructiveQueueActions: boolean;
}

/**
 * A request's rights follow from the one credential it carries, so no credential may belong
 * to two roles, and the single-credential set-up does not mix with per-role ones.
 */
function checkHttpCredentials(h: HttpCredentialsInput, ctx: z.RefinementCtx): void {
  const roles = HTTP_ROLES.filter((r) => h[r] !== undefined);
  const legacy = h.authToken !== undefined || h.basicAuth !== undefined;
  if (legacy && roles.length > 0) {
    ctx.addIssue({
      code: 'custom',
      path: [h.authToken !== undefined ? 'authToken' : 'basicAuth'],
      message: `the single credential (authToken, basicAuth: every right) cannot be combined with per-role credentials (${roles.join(', ')}); move it to http.operator`,
    });
  }
  const tokens = new Map<string, string>();
  const users = new Map<string, string>();
  for (const role of roles) {
    const c = h[role]!;
    if (c.token !== undefined) {
      const other = tokens.get(c.token);
      if (other) ctx.addIssue({ code: 'custom', path: [role, 'token'], message: `is the same as http.${other}.token: each role needs its own` });
      tokens.set(c.token, role);
    }
    if (c.basic !== undefined) {
      const other = users.get(c.basic.username);
      if (other) ctx.addIssue({ code: 'custom', path: [role, 'basic', 'username'], message: `is also http.${other}'s user name: each role needs its own` });
      users.set(c.basic.username, role);
      const sameAsToken = tokens.get(c.basic.password);
      if (sameAsToken) ctx.addIssue({ code: 'custom', path: [role, 'basic', 'password'], message: `is http.${sameAsToken}.token: each role needs its own secret` });
    }
  }
  if (h.allowDestructiveQueueActions && roles.length > 0 && h.operator === undefined) {
    ctx.addIssue({ code: 'custom', path: ['allowDestructiveQueueActions'], message: 'needs an operator credential (http.operator): no other role may run destructive queue actions' });
  }
}

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

/** TLS to a Redis (turned on by this section or a `rediss://` URL): PEM file paths; without them, the system CAs. */
const RedisTlsSchema = z
  .object({
    ca: z.string().min(1).optional(),
    cert: z.string().min(1).optional(),
    key: z.string().min(1).optional(),
    rejectUnauthorized: z.boolean().default(true),
  })
  .strict()
  .refine((t) => (t.cert === undefined) === (t.key === undefined), { message: 'cert and key go together' });

export type RedisTlsConfig = z.infer<typeof RedisTlsSchema>;

const IndexDefinitionSchema = z
  .object({
    settings: z.record(z.string(), z.unknown()).optional(),
    mappings: z.record(z.string(), z.unknown()).optional(),
  })
  .strict();

/** The outbox stream lives in the source Redis, in the first of `redis.databases`. */
const OutboxSchema = z
  .object({
    /** Stream key; default `<queue.prefix>:outbox`, which is never indexed itself. */
    stream: z.string().min(1).optional(),
    group: z.string().min(1).default('redis-es-sync'),
    /** Consumer name in the group; default `<hostname>-<pid>`. A stable name re-reads its own unacknowledged entries at once on restart. */
    consumer: z.string().min(1).optional(),
    /** Entries per XREADGROUP / XAUTOCLAIM. */
    batch: z.number().int().positive().default(500),
    /** How long one XREADGROUP waits for new entries. */
    blockMs: z.number().int().positive().default(2000),
    /** Entries another consumer has held unacknowledged this long are taken over (XAUTOCLAIM). */
    claimIdleMs: z.number().int().positive().default(60000),
    /** Keep about this many entries, acknowledged ones included; unset: trim every acknowledged entry. Unacknowledged entries are never trimmed. */
    trimMaxLen: z.number().int().positive().optional(),
    /** Where a newly created group starts: `0` the whole stream, `$` only entries added from now on. */
    startFrom: z.enum(['0', '$']).default('0'),
    /** Full reconciliation on this schedule (0: only when the group is created or requested); for expirations and evictions, which write no entry. */
    reconcileIntervalMs: z.number().int().min(0).default(0),
  })
  .strict()
  .prefault({});

export const ConfigSchema = z
  .object({
    logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    redis: z
      .object({
        url: redisUrl.optional(),
        cluster: ClusterSchema.optional(),
        sentinel: SentinelSchema.optional(),
        databases: z.array(z.number().int().min(0)).min(1).default([0]),
        /** SCAN MATCH patterns for snapshots and reconciliation. */
        patterns: z.array(z.string().min(1)).min(1).default(['*']),
        tls: RedisTlsSchema.optional(),
      })
      .strict()
      .superRefine((r, ctx) => {
        oneEndpoint(r, ctx);
        if (r.cluster && r.databases.some((db) => db !== 0)) {
          ctx.addIssue({ code: 'custom', path: ['databases'], message: 'a Redis Cluster has only database 0' });
        }
      }),
    queue: z
      .object({
        url: redisUrl.optional(),
        cluster: ClusterSchema.optional(),
        sentinel: SentinelSchema.optional(),
        /** Prefix of every key BullMQ and this tool write; such keys are never captured. */
        prefix: z.string().min(1).default('redis-es-sync'),
        name: z.string().min(1).default('changes'),
        /** How many attempts a job gets for unexpected errors (Elasticsearch outages are retried without limit). */
        attempts: z.number().int().min(1).default(10),
        /** Completed jobs kept for inspection. */
        keepCompleted: z.number().int().min(0).default(1000),
        /** Failed jobs kept for replay. */
        keepFailed: z.number().int().min(0).default(100000),
        tls: RedisTlsSchema.optional(),
      })
      .strict()
      .superRefine((q, ctx) => {
        oneEndpoint(q, ctx);
        // BullMQ's scripts touch several keys at once: in a cluster they must share one slot.
        if (q.cluster && !/^[^{]*\{[^}]+\}/.test(q.prefix)) {
          ctx.addIssue({
            code: 'custom',
            path: ['prefix'],
            message: `a queue in a Redis Cluster needs a hash tag in its prefix so all its keys share one slot, e.g. "{${q.prefix}}"`,
          });
        }
      }),
    elasticsearch: z
      .object({
        url: httpUrl,
        apiKey: z.string().min(1).optional(),
        username: z.string().min(1).optional(),
        password: z.string().min(1).optional(),
        requestTimeoutMs: z.number().int().positive().default(30000),
        tls: z
          .object({
            /** PEM file of the CA that signed the cluster's certificate. */
            ca: z.string().min(1).optional(),
            /** SHA-256 fingerprint of the CA (as Elasticsearch prints it at first start). */
            caFingerprint: z
              .string()
              .regex(/^([0-9A-Fa-f]{2}:?){31}[0-9A-Fa-f]{2}$/, 'must be a SHA-256 fingerprint: 64 hex digits, colons allowed')
              .optional(),
            rejectUnauthorized: z.boolean().default(true),
          })
          .strict()
          .optional(),
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
         * How changes are captured: keyspace notifications (+ reconciliation), a Redis Streams
         * outbox the application writes, or the replication protocol (the producer acts as a
         * replica; self-hosted Redis/Valkey only).
         */
        mode: z.enum(['notifications', 'outbox', 'replication']).default('notifications'),
        /** Set notify-keyspace-events on the source when flags are missing, instead of stopping. */
        configureNotifications: z.boolean().default(false),
        /** Full reconciliation on this schedule (0 = only after reconnects and at start). */
        reconcileIntervalMs: z.number().int().min(0).default(600000),
        /** Only the holder of this lease (in the queue Redis) captures; a standby takes over when it expires. */
        leaseTtlMs: z.number().int().min(500).default(5000),
        /** How often the leader renews the lease and a standby tries to take it. */
        leaseRenewMs: z.number().int().min(50).default(1000),
        scanCount: z.number().int().positive().default(1000),
        /** Keys per snapshot job. */
        snapshotBatchKeys: z.number().int().positive().default(500),
        /** Changes gathered before one INCRBY + one addBulk. */
        enqueueBatch: z.number().int().positive().default(500),
        enqueueFlushMs: z.number().int().min(0).default(2),
        /** A key enqueued less than this long ago waits out the window: one write per window for a hot key (0 = off). */
        hotKeyWindowMs: z.number().int().min(0).default(100),
        /** `mode: outbox`: the change stream the application writes (README, "The Streams outbox"). */
        outbox: OutboxSchema,
        /** Redis Cluster: how often the masters are listed again to follow failovers and resharding. */
        topologyRefreshMs: z.number().int().positive().default(5000),
        /**
         * A reconciliation that would delete more than `maxShare` of an index's documents, and
         * more than `minDeletes`, deletes none of them (a wrong or emptied source); 1 turns it off.
         */
        deletionGuard: z
          .object({
            maxShare: z.number().min(0).max(1).default(0.2),
            minDeletes: z.number().int().min(0).default(100),
          })
          .strict()
          .prefault({}),
      })
      .strict()
      .refine((p) => p.leaseRenewMs * 2 <= p.leaseTtlMs, {
        message: 'leaseRenewMs must be at most half of leaseTtlMs, so one missed renewal does not lose the lease',
        path: ['leaseRenewMs'],
      })
      .prefault({}),
    worker: z
      .object({
        /** Jobs held at once (each up to producer.enqueueBatch or snapshotBatchKeys keys); they wait in the bulk batcher, so this bounds memory, not CPU. */
        concurrency: z.number().int().positive().default(100),
        bulkMaxDocs: z.number().int().positive().default(1000),
        bulkMaxBytes: z.number().int().positive().default(5 * 1024 * 1024),
        /** A document larger than this (as JSON) fails its job instead of being sent. */
        maxDocumentBytes: z.number().int().positive().default(10 * 1024 * 1024),
        flushMs: z.number().int().min(0).default(10),
        maxInflightBulks: z.number().int().positive().default(2),
        retryBaseMs: z.number().int().positive().default(200),
        retryMaxMs: z.number().int().positive().default(15000),
        lockDurationMs: z.number().int().positive().default(30000),
        stalledIntervalMs: z.number().int().positive().default(30000),
      })
      .strict()
      .prefault({}),
    http: z
      .object({
        /** Port of the HTTP surface (dashboard, metrics, probes); 0 = not served (`dashboard` then uses 3000). */
        port: z.preprocess(numberFromString, z.number().int().min(0).max(65535)).default(0),
        host: z.string().min(1).default('127.0.0.1'),
        /** The single-credential set-up: search, viewer and operator rights alike. Prefer one credential per role below. */
        authToken: z.string().min(1).optional(),
        basicAuth: BasicAuthSchema.optional(),
        /** Applications: /search and /doc only. */
        search: HttpCredentialSchema.optional(),
        /** The dashboard read-only, and /metrics. */
        viewer: HttpCredentialSchema.optional(),
        /** What a viewer may, plus retry, clean and promote on the dashboard. */
        operator: HttpCredentialSchema.optional(),
        /** Connections served at once; more are refused until one closes. */
        maxConnections: z.number().int().positive().default(512),
        /** Dashboard actions that lose or forge changes (add, edit, pause, empty, obliterate…): refused unless true. */
        allowDestructiveQueueActions: z.preprocess(booleanFromString, z.boolean()).default(false),
      })
      .strict()
      .superRefine(checkHttpCredentials)
      .prefault({}),
    dependencies: z
      .object({
        /**
         * How long a Redis or Elasticsearch may take to connect and answer its first command at
         * start-up. One-shot commands stop with the endpoint named after it; long-running roles
         * keep waiting and say so.
         */
        timeoutMs: z.number().int().positive().default(5000),
        /** While a long-running role waits for a dependency, it logs what it waits for this often (and once at once). */
        waitLogEveryMs: z.number().int().positive().default(15000),
      })
      .strict()
      .prefault({}),
    search: z
      .object({
        /** How long a /search answer stays cached; it is dropped sooner when its index changes. */
        cacheTtlMs: z.number().int().min(0).default(30000),
        cache: z
          .object({
            /** A Redis of the cache's own (with an eviction policy); default: the queue Redis. */
            url: redisUrl.optional(),
            /** A larger answer (as JSON) is served but not cached. */
            maxEntryBytes: z.number().int().positive().default(256 * 1024),
            /** All cached answers together; past it new answers are not cached until old ones expire. */
            maxTotalBytes: z.number().int().positive().default(32 * 1024 * 1024),
          })
          .strict()
          .refine((c) => c.maxEntryBytes <= c.maxTotalBytes, { message: 'maxEntryBytes must be at most maxTotalBytes', path: ['maxEntryBytes'] })
          .prefault({}),
        defaultPageSize: z.number().int().positive().default(20),
        maxPageSize: z.number().int().positive().default(100),
        /** Words in one search, over `q` and every full-text clause of a body. */
        maxQueryTerms: z.number().int().positive().default(64),
        /** Fuzzy terms in one search (`word~`, every word of a fuzzy match); each expands to at most 10 terms. */
        maxFuzzyTerms: z.number().int().min(0).default(8),
        /** Searches one client (its address and credential) may have in flight; more answer 429. */
        maxConcurrentPerClient: z.number().int().positive().default(16),
        /** Searches in flight in this process, all clients together; more answer 429, so Elasticsearch keeps threads for indexing. */
        maxConcurrent: z.number().int().positive().default(64),
        /** A larger document is not served by /doc (413). */
        maxDocumentBytes: z.number().int().positive().default(1024 * 1024),
        /** Longer `q` strings are refused with 400. */
        maxQueryLength: z.number().int().positive().default(1000),
        /** Elasticsearch `timeout` and the client's request timeout for one search. */
        timeoutMs: z.number().int().positive().default(5000),
        /** After a bulk, answers are not cached for this long: Elasticsearch shows indexed documents to searches only after a refresh (index.refresh_interval, 1 s by default). */
        refreshWindowMs: z.number().int().min(0).default(2000),
      })
      .strict()
      .prefault({}),
  })
  .strict();

export type AppConfig = z.infer<typeof ConfigSchema>;
export type ConfigInput = z.input<typeof ConfigSchema>;
