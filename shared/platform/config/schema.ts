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
    nodes: z
      .array(redisUrl)
      .min(1)
      .describe(
        'Seed nodes as `redis://` or `rediss://` URLs; the rest of the topology is discovered from them. Credentials and TLS of the first apply to every node.',
      ),
  })
  .strict();

/** A master followed through Redis Sentinel. */
const SentinelSchema = z
  .object({
    sentinels: z.array(hostPort).min(1).describe('Sentinels as `host:port`.'),
    name: z.string().min(1).describe('The master group name the sentinels monitor.'),
    username: z.string().min(1).optional().describe('ACL user of the Redis servers themselves (not of the sentinels).'),
    password: z.string().min(1).optional().describe('Password of the Redis servers themselves.'),
    sentinelPassword: z.string().min(1).optional().describe('Password of the sentinels, when they require one.'),
    tls: z
      .boolean()
      .default(false)
      .describe("TLS to the servers and the sentinels (with this section's `tls` options when given)."),
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
  } else if (given[1] !== undefined) {
    ctx.addIssue({
      code: 'custom',
      path: [given[1]],
      message: `give only one of url, cluster or sentinel (got ${given.join(' and ')})`,
    });
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
  .regex(
    /^[^-_+A-Z][^A-Z\\/*?"<>| ,#:]*$/,
    'must be lowercase, must not start with - _ + and must not contain \\ / * ? " < > | , # : or spaces',
  );

/** Environment variables and flags arrive as strings. */
function numberFromString(v: unknown): unknown {
  return typeof v === 'string' && v.trim() !== '' && !Number.isNaN(Number(v)) ? Number(v) : v;
}

function booleanFromString(v: unknown): unknown {
  if (v === 'true' || v === '1') return true;
  if (v === 'false' || v === '0' || v === '') return false;
  return v;
}

const BasicAuthSchema = z
  .object({
    username: z.string().min(1).describe('HTTP basic auth user name.'),
    password: z
      .string()
      .min(1)
      .describe('HTTP basic auth password; beyond loopback at least 16 characters, not one repeated.'),
  })
  .strict();

/** One HTTP role's credential: a bearer token, basic credentials (browsers prompt for them), or both. */
const HttpCredentialSchema = z
  .object({
    token: z
      .string()
      .min(1)
      .optional()
      .describe(
        'Bearer token (`Authorization: Bearer <token>`); beyond loopback at least 16 characters, not one repeated (`openssl rand -hex 24`).',
      ),
    basic: BasicAuthSchema.optional().describe('Basic credentials `{ username, password }`; browsers prompt for them.'),
  })
  .strict()
  .refine((c) => c.token !== undefined || c.basic !== undefined, { error: 'give token, basic or both' });

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
  const present = HTTP_ROLES.flatMap((role) => {
    const c = h[role];
    return c === undefined ? [] : [{ role, c }];
  });
  const roles = present.map((p) => p.role);
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
  for (const { role, c } of present) {
    if (c.token !== undefined) {
      const other = tokens.get(c.token);
      if (other)
        ctx.addIssue({
          code: 'custom',
          path: [role, 'token'],
          message: `is the same as http.${other}.token: each role needs its own`,
        });
      tokens.set(c.token, role);
    }
    if (c.basic !== undefined) {
      const other = users.get(c.basic.username);
      if (other)
        ctx.addIssue({
          code: 'custom',
          path: [role, 'basic', 'username'],
          message: `is also http.${other}'s user name: each role needs its own`,
        });
      users.set(c.basic.username, role);
      const sameAsToken = tokens.get(c.basic.password);
      if (sameAsToken)
        ctx.addIssue({
          code: 'custom',
          path: [role, 'basic', 'password'],
          message: `is http.${sameAsToken}.token: each role needs its own secret`,
        });
    }
  }
  if (h.allowDestructiveQueueActions && roles.length > 0 && h.operator === undefined) {
    ctx.addIssue({
      code: 'custom',
      path: ['allowDestructiveQueueActions'],
      message: 'needs an operator credential (http.operator): no other role may run destructive queue actions',
    });
  }
}

export const COERCIONS = ['string', 'number', 'integer', 'boolean', 'date', 'json'] as const;
export type Coercion = (typeof COERCIONS)[number];

export const RuleSchema = z
  .object({
    match: z
      .string()
      .min(1)
      .optional()
      .describe('Glob over the key name (`user:*`, `cart:{a,b}:*`); give exactly one of `match` and `regex`.'),
    regex: z
      .string()
      .min(1)
      .optional()
      .describe('Regular expression over the key name; its groups feed the `id` template.'),
    databases: z.array(z.number().int().min(0)).optional().describe('Restrict the rule to these Redis databases.'),
    skip: z
      .boolean()
      .default(false)
      .describe('Keys matching this rule are not indexed at all (a change to them is dropped at capture).'),
    index: indexName.optional().describe('Index of the matching keys; default `mapping.defaultIndex`.'),
    id: z
      .string()
      .min(1)
      .optional()
      .describe(
        '`_id` template: `{key}`, `{db}`, `{1}`…, `{name}` from regex groups or glob stars (`{1}`). An id that is empty, not UTF-8 or over 512 bytes becomes `sha256:<hex>`.',
      ),
    json: z
      .union([z.boolean(), z.literal('auto')])
      .default('auto')
      .describe(
        'Parse string values as JSON: `true` (always; invalid JSON is refused into the failure store), `false`, or `auto` (when it is a JSON object).',
      ),
    fields: z
      .object({
        keep: z.array(z.string().min(1)).optional().describe('Keep only these fields of a hash or JSON object.'),
        rename: z.record(z.string(), z.string().min(1)).optional().describe('Rename fields: `{ old: new }`.'),
      })
      .strict()
      .optional()
      .describe('Which fields of the value to keep, and under which names.'),
    coerce: z
      .record(z.string(), z.enum(COERCIONS))
      .optional()
      .describe(
        'Convert fields: `{ field: string | number | integer | boolean | date | json }`; a failed conversion is refused into the failure store (`coerce`).',
      ),
    transform: z
      .string()
      .min(1)
      .optional()
      .describe(
        'Path (relative to the config file) of a CommonJS module exporting `transform(doc, context)`; a throwing transform is refused into the failure store.',
      ),
  })
  .strict()
  .refine((r) => (r.match === undefined) !== (r.regex === undefined), {
    error: 'give exactly one of `match` (glob) or `regex`',
  });

export type RuleConfig = z.infer<typeof RuleSchema>;

/** TLS to a Redis (turned on by this section or a `rediss://` URL): PEM file paths; without them, the system CAs. */
const RedisTlsSchema = z
  .object({
    ca: z
      .string()
      .min(1)
      .optional()
      .describe('PEM file of the CA that signed the server certificate; default: the system CAs.'),
    cert: z.string().min(1).optional().describe('PEM file of the client certificate (with `key`).'),
    key: z.string().min(1).optional().describe('PEM file of the client key (with `cert`).'),
    rejectUnauthorized: z.boolean().default(true).describe('Verify the server certificate; `false` only for tests.'),
  })
  .strict()
  .refine((t) => (t.cert === undefined) === (t.key === undefined), { error: 'cert and key go together' });

export type RedisTlsConfig = z.infer<typeof RedisTlsSchema>;

const IndexDefinitionSchema = z
  .object({
    settings: z
      .record(z.string(), z.unknown())
      .optional()
      .describe(
        "Index settings, as for Elasticsearch's create-index API (`index.gc_deletes` is `5m` unless set here).",
      ),
    mappings: z
      .record(z.string(), z.unknown())
      .optional()
      .describe("Index mappings, as for Elasticsearch's create-index API."),
  })
  .strict();

/** Capture settings every mode shares; `producerSection` puts the modes' own fields between the two parts. */
const PRODUCER_SHARED = {
  configureNotifications: z
    .boolean()
    .default(false)
    .describe(
      'Set `notify-keyspace-events` on the source (on each master of a Cluster) when flags are missing, instead of stopping with an error that names them.',
    ),
  reconcileIntervalMs: z
    .number()
    .int()
    .min(0)
    .default(600000)
    .describe(
      'Notifications mode: full reconciliation on this schedule, in ms (0: only at start and after reconnects and flushes).',
    ),
  leaseTtlMs: z
    .number()
    .int()
    .min(500)
    .default(5000)
    .describe(
      'Only the holder of this lease (in the queue Redis) captures; a standby takes over this long (ms) after the leader died.',
    ),
  leaseRenewMs: z
    .number()
    .int()
    .min(50)
    .default(1000)
    .describe(
      'How often (ms) the leader renews the lease and a standby tries to take it; at most half of `leaseTtlMs`.',
    ),
  shardedCapture: z
    .boolean()
    .default(false)
    .describe(
      'Notifications and replication modes on a Redis Cluster source: a lease per master instead of one for the whole source, so several producers share the capture, each holding at most ceil(masters / live producers) ([hand-over](handover.md#sharded-capture)). Give every producer of the deployment the same value. No effect on other sources (one shard).',
    ),
  scanCount: z.number().int().positive().default(1000).describe('SCAN COUNT of snapshots, reconciliation and verify.'),
  snapshotBatchKeys: z
    .number()
    .int()
    .positive()
    .default(1000)
    .describe(
      "Keys per snapshot or reconciliation job. The default makes a SCAN page (`scanCount`) one job, the size of one `_bulk` (`worker.bulkMaxDocs`): BullMQ's cost is per job, so larger jobs share it among more keys.",
    ),
  snapshotMaxWaitingJobs: z
    .number()
    .int()
    .min(0)
    .default(1000)
    .describe(
      'A snapshot or reconciliation waits before its next SCAN page while the queue holds this many waiting jobs (of up to `snapshotBatchKeys` keys each), so the queue Redis holds a bounded backlog however large the keyspace; 0: no limit.',
    ),
  enqueueBatch: z
    .number()
    .int()
    .positive()
    .default(500)
    .describe('Live changes gathered before one `INCRBY` + one job.'),
  enqueueFlushMs: z.number().int().min(0).default(2).describe('Longest wait (ms) for a partial batch of live changes.'),
  hotKeyWindowMs: z
    .number()
    .int()
    .min(0)
    .default(100)
    .describe(
      'A key enqueued less than this long ago (ms) is held until the window ends: one write per window for a hot key (0: off).',
    ),
};

/**
 * AWS SigV4 signing (Amazon OpenSearch Service, managed or serverless). Not read from `AWS_REGION`:
 * that variable is set in most AWS runtimes, and signing must be asked for, not implied.
 */
const SinkAwsSchema = z
  .object({
    region: z
      .string()
      .regex(/^[a-z]{2}(-[a-z]+)+-\d+$/, 'must be an AWS region such as eu-west-1')
      .optional()
      .describe(
        'AWS region of the domain or collection (e.g. `eu-west-1`); when set, every request is signed with SigV4, credentials from the AWS default provider chain.',
      ),
    service: z
      .enum(['es', 'aoss'])
      .default('es')
      .describe('Signing name: `es` for an OpenSearch Service domain, `aoss` for an OpenSearch Serverless collection.'),
  })
  .strict();

export type SinkAwsConfig = z.infer<typeof SinkAwsSchema>;

/** Shared capture settings listed after the modes' own fields (in the schema and so in the reference). */
const PRODUCER_SHARED_LAST = {
  canary: z
    .object({
      enabled: z
        .boolean()
        .default(true)
        .describe(
          'Write a heartbeat key into the source (one per Cluster master) and export how long it takes to become searchable (`redis_es_sync_freshness_seconds`). The source user then needs write access to `keyPrefix*`. No effect in outbox mode.',
        ),
      intervalMs: z.number().int().min(100).default(5000).describe('How often (ms) each heartbeat key is written.'),
      pollMs: z
        .number()
        .int()
        .min(50)
        .default(500)
        .describe(
          'How often (ms) the producer searches for the heartbeat documents: the measured freshness is late by at most this much.',
        ),
      keyPrefix: z
        .string()
        .min(1)
        .default('redis-es-sync-canary:')
        .describe(
          "Heartbeat keys are this prefix and a hash tag of their master (`<prefix>{<tag>}`); they are indexed into `index`, never into the rules' indices, and `verify` leaves them out.",
        ),
      index: z
        .string()
        .min(1)
        .optional()
        .describe(
          "The index the heartbeat documents go to (created like the others); default `<mapping.defaultIndex>-canary`, so deployments sharing a search engine don't share heartbeats.",
        ),
    })
    .strict()
    .prefault({})
    .describe(
      'The [freshness canary](observability.md#freshness-canary): capture, queue, worker and refresh measured end to end on the live system.',
    ),
  topologyRefreshMs: z
    .number()
    .int()
    .positive()
    .default(5000)
    .describe('Redis Cluster: how often (ms) the masters are listed again to follow failovers and resharding.'),
  deletionGuard: z
    .object({
      maxShare: z
        .number()
        .min(0)
        .max(1)
        .default(0.2)
        .describe(
          "Share of an index's documents a reconciliation may delete; past it (and past `minDeletes`) it deletes none. 1 turns the guard off.",
        ),
      minDeletes: z.number().int().min(0).default(100).describe('Deletes always allowed, whatever the share.'),
    })
    .strict()
    .prefault({})
    .describe(
      'The [mass-deletion guard](operations.md#the-mass-deletion-guard): a reconciliation that would delete most of an index (a wrong or emptied source) deletes none of it.',
    ),
};

/**
 * What the capture modes add to the configuration: `producer.mode` (which of them runs) and
 * each mode's own fields under `producer` (`producer.outbox`). The modes live above this layer
 * (producers/capture/), so they hand these in; see `defineConfigSchema`.
 */
export interface CaptureSchemaParts<M extends z.ZodType<string, string | undefined>, F extends z.ZodRawShape> {
  mode: M;
  fields: F;
}

/** The `producer` section around the modes' parts. */
function producerSection<M extends z.ZodType<string, string | undefined>, F extends z.ZodRawShape>(
  capture: CaptureSchemaParts<M, F>,
) {
  return (
    z
      .object({ mode: capture.mode, ...PRODUCER_SHARED, ...capture.fields, ...PRODUCER_SHARED_LAST })
      .strict()
      .refine(leaseRenewWithinTtl, {
        error: 'leaseRenewMs must be at most half of leaseTtlMs, so one missed renewal does not lose the lease',
        path: ['leaseRenewMs'],
      })
      // An absent section is parsed as `{}`, each field taking its default. The input type is
      // generic over the modes' fields, so TypeScript cannot see that `{}` is one of them; it is,
      // as a mode's fields are optional or defaulted (CaptureModeConfig.fields).
      .prefault({} as never)
      .describe('Capture: how changes are learned and enqueued.')
  );
}

const LeaseTimes = z.object({ leaseRenewMs: z.number(), leaseTtlMs: z.number() });

/** Takes the section as `unknown`: its type is generic over the modes' fields, the two numbers are the shared ones. */
function leaseRenewWithinTtl(section: unknown): boolean {
  const { leaseRenewMs, leaseTtlMs } = LeaseTimes.parse(section);
  return leaseRenewMs * 2 <= leaseTtlMs;
}

/** Every section, before the checks across sections. */
const PlatformSections = z
  .object({
    logLevel: z
      .enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
      .default('info')
      .describe(
        'Log level (env `LOG_LEVEL`, flag `--log-level`); `debug` also prints the stack and cause of a failed dependency check.',
      ),
    redis: z
      .object({
        url: redisUrl
          .optional()
          .describe(
            'The source Redis, standalone: `redis://` or `rediss://` (env `REDIS_URL`, flag `--redis-url`). Give exactly one of `url`, `cluster` and `sentinel`.',
          ),
        cluster: ClusterSchema.optional().describe('The source is a Redis Cluster (only database 0 exists).'),
        sentinel: SentinelSchema.optional().describe('The source is a master followed through Redis Sentinel.'),
        databases: z.array(z.number().int().min(0)).min(1).default([0]).describe('Databases to sync.'),
        patterns: z
          .array(z.string().min(1))
          .min(1)
          .default(['*'])
          .describe('SCAN MATCH patterns for snapshots and reconciliation.'),
        tls: RedisTlsSchema.optional().describe(
          'TLS to the source Redis (turns TLS on like `rediss://`): PEM file paths.',
        ),
      })
      .strict()
      .describe('The source Redis, the truth: read, never written.')
      .superRefine((r, ctx) => {
        oneEndpoint(r, ctx);
        if (r.cluster && r.databases.some((db) => db !== 0)) {
          ctx.addIssue({ code: 'custom', path: ['databases'], message: 'a Redis Cluster has only database 0' });
        }
      }),
    queue: z
      .object({
        url: redisUrl
          .optional()
          .describe('The BullMQ Redis (env `QUEUE_REDIS_URL`, flag `--queue-redis-url`); default: the source Redis.'),
        cluster: ClusterSchema.optional().describe(
          'The queue is a Redis Cluster: `prefix` must then contain a hash tag such as `{redis-es-sync}`.',
        ),
        sentinel: SentinelSchema.optional().describe('The queue is a master followed through Redis Sentinel.'),
        prefix: z
          .string()
          .min(1)
          .default('redis-es-sync')
          .describe(
            'BullMQ prefix: of every key BullMQ and this tool write (version counter, lease, failure store, search cache); such keys are never captured.',
          ),
        name: z.string().min(1).default('changes').describe('BullMQ queue name.'),
        partitions: z
          .number()
          .int()
          .min(1)
          .max(1024)
          .default(1)
          .describe(
            'BullMQ queues the jobs are spread over, by a hash of (database, key); each has its own hash tag, so on a Redis Cluster they spread over the masters. 1: the single queue `<prefix>:<name>`; may be changed on a running deployment ([operations](operations.md#partitioned-queues)).',
          ),
        attempts: z
          .number()
          .int()
          .min(1)
          .default(10)
          .describe('Attempts a job gets for unexpected errors (Elasticsearch outages are retried without limit).'),
        keepCompleted: z.number().int().min(0).default(1000).describe('Completed jobs kept for inspection.'),
        keepFailed: z.number().int().min(0).default(100000).describe('Failed jobs kept for inspection and replay.'),
        tls: RedisTlsSchema.optional().describe(
          'TLS to the queue Redis: PEM file paths; default `redis.tls` when the queue shares the source.',
        ),
      })
      .strict()
      .describe(
        'The queue Redis (BullMQ, the version counter, the producer lease, the failure store); give it `appendonly yes` and `maxmemory-policy noeviction`.',
      )
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
        url: httpUrl.describe(
          '`http://` or `https://` URL of Elasticsearch (env `ELASTICSEARCH_URL`, flag `--elasticsearch-url`).',
        ),
        apiKey: z.string().min(1).optional().describe('API key (env `ELASTICSEARCH_API_KEY`).'),
        username: z.string().min(1).optional().describe('User, with `password` (env `ELASTICSEARCH_USERNAME`).'),
        password: z.string().min(1).optional().describe('Password, with `username` (env `ELASTICSEARCH_PASSWORD`).'),
        requestTimeoutMs: z.number().int().positive().default(30000).describe('Timeout of one request, in ms.'),
        tls: z
          .object({
            ca: z.string().min(1).optional().describe("PEM file of the CA that signed the cluster's certificate."),
            caFingerprint: z
              .string()
              .regex(
                /^([0-9A-Fa-f]{2}:?){31}[0-9A-Fa-f]{2}$/,
                'must be a SHA-256 fingerprint: 64 hex digits, colons allowed',
              )
              .optional()
              .describe('SHA-256 fingerprint of the CA (`AA:BB:…`, as Elasticsearch prints it at first start).'),
            rejectUnauthorized: z.boolean().default(true).describe('Verify the certificate; `false` only for tests.'),
          })
          .strict()
          .optional()
          .describe('TLS for an `https://` URL: a CA PEM file and/or its fingerprint.'),
      })
      .strict()
      .refine((e) => (e.username === undefined) === (e.password === undefined), {
        error: 'username and password go together',
      })
      .describe('The Elasticsearch the documents go to.'),
    sink: z
      .object({
        engine: z
          .enum(['auto', 'elasticsearch', 'opensearch'])
          .default('auto')
          .describe(
            'The search engine at `elasticsearch.url`: `auto` asks it at start-up (product and version, one request needing the `monitor` privilege); `elasticsearch` also asks, and refuses any other product; `opensearch` skips the question (Amazon OpenSearch Service, whose requests are signed).',
          ),
        aws: SinkAwsSchema.optional().describe(
          'Amazon OpenSearch Service: sign every request with AWS SigV4 ([security](security.md#amazon-opensearch-service)).',
        ),
      })
      .strict()
      .prefault({})
      .describe(
        'Which search engine adapter writes the documents (Elasticsearch 8.x and 9.x, OpenSearch 2.x and 3.x), and how its requests are signed.',
      ),
    mapping: z
      .object({
        defaultIndex: indexName.default('redis').describe('Index of keys no rule sends elsewhere.'),
        unmatched: z
          .enum(['index', 'skip'])
          .default('index')
          .describe('What happens to keys no rule matches: `index` them with the default document, or `skip` them.'),
        rules: z
          .array(RuleSchema)
          .default([])
          .describe('Mapping rules, the first that matches a key wins (examples in `examples/sync.example.yml`).'),
        indices: z
          .record(indexName, IndexDefinitionSchema)
          .default({})
          .describe('`settings` and `mappings` per index name, for indices created at start-up when missing.'),
      })
      .strict()
      .prefault({})
      .describe('Which keys become which documents, in which index ([bytes](bytes.md)).'),
    producer: producerSection({ mode: z.string().min(1), fields: {} }),
    worker: z
      .object({
        concurrency: z
          .number()
          .int()
          .positive()
          .default(100)
          .describe(
            'Jobs held at once (each up to `producer.enqueueBatch` or `snapshotBatchKeys` keys); they wait in the bulk batcher, so this bounds memory, not CPU.',
          ),
        bulkMaxDocs: z.number().int().positive().default(1000).describe('Operations per `_bulk` request.'),
        bulkMaxBytes: z
          .number()
          .int()
          .positive()
          .default(5 * 1024 * 1024)
          .describe(
            'Bytes per `_bulk` request (5 MiB); a single larger document (within `maxDocumentBytes`) goes alone.',
          ),
        maxDocumentBytes: z
          .number()
          .int()
          .positive()
          .default(10 * 1024 * 1024)
          .describe(
            'A larger document (as JSON, 10 MiB) is not sent: its key is recorded in the failure store (`too_large`) and a refusal stub replaces its document.',
          ),
        flushMs: z
          .number()
          .int()
          .min(0)
          .default(10)
          .describe('Longest wait (ms) before a partial `_bulk` request goes out.'),
        maxInflightBulks: z.number().int().positive().default(2).describe('`_bulk` requests in flight per process.'),
        retryBaseMs: z
          .number()
          .int()
          .positive()
          .default(200)
          .describe(
            'First backoff (ms) while Elasticsearch is unavailable (429, 5xx, connection errors); doubles with jitter.',
          ),
        retryMaxMs: z
          .number()
          .int()
          .positive()
          .default(15000)
          .describe('Longest backoff (ms) while Elasticsearch is unavailable.'),
        lockDurationMs: z
          .number()
          .int()
          .positive()
          .default(30000)
          .describe("BullMQ job lock (ms): how soon a dead worker's jobs can be taken over."),
        stalledIntervalMs: z.number().int().positive().default(30000).describe('BullMQ stalled-job check period (ms).'),
        partitions: z
          .array(z.number().int().min(0))
          .min(1)
          .optional()
          .describe(
            'The queue partitions (0 to `queue.partitions` - 1) this worker consumes, e.g. `[0, 2]`; default all. `concurrency` is shared among them.',
          ),
        formerPartitionsPollMs: z
          .number()
          .int()
          .positive()
          .default(5000)
          .describe(
            'How often (ms) the worker looks for jobs left in the queues of another `queue.partitions` (after a change of it) and drains them.',
          ),
      })
      .strict()
      .prefault({})
      .describe('Indexing: how queued jobs become `_bulk` requests.'),
    http: z
      .object({
        port: z
          .preprocess(numberFromString, z.number().int().min(0).max(65535))
          .default(0)
          .describe(
            'Port of the HTTP surface (dashboard, `/metrics`, probes) of `run`, `producer`, `worker` (env `HTTP_PORT`, flag `--http-port`); 0: not served (`dashboard` and `serve` then use 3000).',
          ),
        host: z
          .string()
          .min(1)
          .default('127.0.0.1')
          .describe(
            'Listen address (env `HTTP_HOST`, flag `--http-host`); a non-loopback one without any credential stops start-up.',
          ),
        authToken: z
          .string()
          .min(1)
          .optional()
          .describe(
            "The single-credential set-up, as `Authorization: Bearer <token>` (env `HTTP_AUTH_TOKEN`): every role's rights; not combinable with the per-role credentials. Prefer one credential per role.",
          ),
        basicAuth: BasicAuthSchema.optional().describe(
          'The single-credential set-up as HTTP basic auth (env `HTTP_BASIC_USERNAME`, `HTTP_BASIC_PASSWORD`).',
        ),
        search: HttpCredentialSchema.optional().describe(
          'Search clients (applications): `/search` and `/doc` only (env `HTTP_SEARCH_TOKEN`).',
        ),
        viewer: HttpCredentialSchema.optional().describe(
          'Viewers: the dashboard read-only, and `/metrics` (env `HTTP_VIEWER_TOKEN`, `HTTP_VIEWER_USERNAME`, `HTTP_VIEWER_PASSWORD`).',
        ),
        operator: HttpCredentialSchema.optional().describe(
          'Operators: what a viewer may, plus retry, clean and promote on the dashboard (env `HTTP_OPERATOR_TOKEN`, `HTTP_OPERATOR_USERNAME`, `HTTP_OPERATOR_PASSWORD`).',
        ),
        maxConnections: z
          .number()
          .int()
          .positive()
          .default(512)
          .describe('Connections served at once; more are closed until one ends.'),
        allowDestructiveQueueActions: z
          .preprocess(booleanFromString, z.boolean())
          .default(false)
          .describe(
            '`true` lets operators also add and edit jobs, pause, resume, empty and obliterate the queue (env `HTTP_ALLOW_DESTRUCTIVE_QUEUE_ACTIONS`); refused for everyone otherwise.',
          ),
      })
      .strict()
      .superRefine(checkHttpCredentials)
      .prefault({})
      .describe(
        'The HTTP surface: dashboard, `/failures`, `/metrics`, probes and the search API ([operations](operations.md#http-surface)).',
      ),
    dependencies: z
      .object({
        timeoutMs: z
          .number()
          .int()
          .positive()
          .default(5000)
          .describe(
            'How long (ms) a Redis or Elasticsearch may take to connect and answer its first command at start-up. One-shot commands then stop with the endpoint named (exit 1); long-running roles keep waiting and say so.',
          ),
        waitLogEveryMs: z
          .number()
          .int()
          .positive()
          .default(15000)
          .describe(
            'While a long-running role waits for a dependency, it logs what it waits for this often (ms), and once at once.',
          ),
      })
      .strict()
      .prefault({})
      .describe('The start-up check of each Redis and Elasticsearch ([exit codes](operations.md#exit-codes)).'),
    rebuild: z
      .object({
        graceMs: z
          .number()
          .int()
          .min(0)
          .default(60000)
          .describe(
            'After the alias swap, how long (ms) `rebuild` keeps the old generation before deleting it (`--grace` overrides, `--keep` keeps it), so searches already running on it finish.',
          ),
        verifySettleMs: z
          .number()
          .int()
          .min(0)
          .default(2000)
          .describe(
            "Mismatches `rebuild`'s verify of the new generation finds are checked once more after this pause (ms), so live changes still in flight are not reported.",
          ),
        batchKeys: z
          .number()
          .int()
          .positive()
          .default(500)
          .describe('Keys `rebuild` reads and writes into the new generation per bulk.'),
      })
      .strict()
      .prefault({})
      .describe('`rebuild`: a new index generation behind the alias ([rebuilds](operations.md#rebuilds)).'),
    search: z
      .object({
        cacheTtlMs: z
          .number()
          .int()
          .min(0)
          .default(30000)
          .describe(
            'How long (ms) a `/search` answer stays cached (0: no cache); an indexed change to its index drops it sooner.',
          ),
        cache: z
          .object({
            url: redisUrl
              .optional()
              .describe(
                "A Redis of the cache's own (`redis://`; give it an eviction policy such as `allkeys-lru`); default: the queue Redis.",
              ),
            maxEntryBytes: z
              .number()
              .int()
              .positive()
              .default(256 * 1024)
              .describe('A larger answer (as JSON, 256 KiB) is served but not cached.'),
            maxTotalBytes: z
              .number()
              .int()
              .positive()
              .default(32 * 1024 * 1024)
              .describe(
                'All cached answers together (32 MiB); past it new answers are not cached until old ones expire.',
              ),
          })
          .strict()
          .refine((c) => c.maxEntryBytes <= c.maxTotalBytes, {
            error: 'maxEntryBytes must be at most maxTotalBytes',
            path: ['maxEntryBytes'],
          })
          .prefault({})
          .describe('Where and how much the search cache stores.'),
        defaultPageSize: z.number().int().positive().default(20).describe('`size` when not given.'),
        maxPageSize: z.number().int().positive().default(100).describe('A larger `size` is refused with 400.'),
        maxQueryTerms: z
          .number()
          .int()
          .positive()
          .default(64)
          .describe('Words in one search, over `q` and every full-text clause of a body; more: 400.'),
        maxFuzzyTerms: z
          .number()
          .int()
          .min(0)
          .default(8)
          .describe(
            'Fuzzy words in one search (`word~`, every word of a fuzzy `match`); each expands to at most 10 terms. More: 400.',
          ),
        maxConcurrentPerClient: z
          .number()
          .int()
          .positive()
          .default(16)
          .describe(
            'Searches (and `/doc` reads) one client — an address with its credential — may have in flight; more answer 429 with `Retry-After: 1`.',
          ),
        maxConcurrent: z
          .number()
          .int()
          .positive()
          .default(64)
          .describe(
            'Searches in flight in this process, all clients together; more answer 429, so Elasticsearch keeps threads for indexing.',
          ),
        maxDocumentBytes: z
          .number()
          .int()
          .positive()
          .default(1024 * 1024)
          .describe('A larger document (1 MiB) is not served by `/doc` (413).'),
        maxQueryLength: z.number().int().positive().default(1000).describe('A longer `q` is refused with 400.'),
        timeoutMs: z
          .number()
          .int()
          .positive()
          .default(5000)
          .describe(
            'Elasticsearch `timeout` and client timeout (ms) of one search; a timed-out (partial) answer is served but not cached.',
          ),
        refreshWindowMs: z
          .number()
          .int()
          .min(0)
          .default(2000)
          .describe(
            'After a bulk, answers for its indices are not cached for this long (ms): Elasticsearch shows indexed documents to searches only after a refresh (keep it above `index.refresh_interval`, 1 s by default).',
          ),
      })
      .strict()
      .prefault({})
      .describe('The [search API](search-api.md): cache, page sizes and cost limits.'),
  })
  .strict();

/** `worker.partitions` names partitions `queue.partitions` makes. */
function checkWorkerPartitions(
  c: { worker: { partitions?: number[] | undefined }; queue: { partitions: number } },
  ctx: z.RefinementCtx,
): void {
  const outside = c.worker.partitions?.filter((p) => p >= c.queue.partitions) ?? [];
  if (outside.length > 0) {
    ctx.addIssue({
      code: 'custom',
      path: ['worker', 'partitions'],
      message: `partitions ${outside.join(', ')} do not exist: queue.partitions is ${String(c.queue.partitions)} (0 to ${String(c.queue.partitions - 1)})`,
    });
  }
}

/**
 * Every section but the capture modes' parts: what the layers below producers/ parse and read
 * (`AppConfig`). `producer.mode` is any name here; the full schema is `defineConfigSchema`'s.
 */
export const PlatformConfigSchema = PlatformSections.superRefine(checkWorkerPartitions);

/**
 * The configuration as the layers below producers/ see it: every section, with `producer.mode`
 * as a plain name and no mode's own fields. The full configuration (`defineConfigSchema`'s)
 * is assignable to it.
 */
export type AppConfig = z.infer<typeof PlatformConfigSchema>;

/**
 * The full schema: the platform's sections with the capture modes' parts in `producer`, at the
 * same place in the field order whatever the modes are. Composed above the platform, by the
 * capture registry, which is the one place that knows the modes.
 */
export function defineConfigSchema<M extends z.ZodType<string, string | undefined>, F extends z.ZodRawShape>(
  capture: CaptureSchemaParts<M, F>,
) {
  for (const name of Object.keys(capture.fields)) {
    if (name === 'mode' || name in PRODUCER_SHARED || name in PRODUCER_SHARED_LAST) {
      throw new Error(`a capture mode's field producer.${name} is already a shared producer field`);
    }
  }
  return PlatformSections.extend({ producer: producerSection(capture) }).superRefine(checkWorkerPartitions);
}

/** A list the schema validated as non-empty (`.min(1)`); zod 4 infers a plain `T[]` for it. */
export type NonEmpty<T> = readonly [T, ...T[]];

/**
 * Types a schema-validated non-empty list as such, so that its first element is a `T` rather
 * than `T | undefined`. Throws only if called on a list the schema did not validate.
 */
export function nonEmpty<T>(items: readonly T[], what: string): NonEmpty<T> {
  const [first, ...rest] = items;
  if (first === undefined) throw new Error(`${what} is empty; the configuration schema requires at least one`);
  return [first, ...rest];
}
