import { z } from 'zod';
import { defineCaptureModeConfig, type ModeConfig } from '../config';

/** The outbox stream lives in the source Redis, in the first of `redis.databases`. */
export const OutboxSchema = z
  .object({
    stream: z
      .string()
      .min(1)
      .optional()
      .describe(
        'Stream key, in the source Redis (in the first of `redis.databases`); default `<queue.prefix>:outbox`, which is never indexed itself (a name outside the prefix needs a `{ match: <stream>, skip: true }` rule).',
      ),
    group: z.string().min(1).default('redis-es-sync').describe('Consumer group of the producers.'),
    shareGroup: z
      .boolean()
      .default(false)
      .describe(
        "Scale out: every producer reads the group as a consumer of its own, with no lease, so the entries are spread over them; a dead one's unacknowledged entries are taken over after `claimIdleMs` (or at once by a restart under the same `consumer` name). false: only the lease holder reads ([capture modes](capture-modes.md#scaling-out)).",
      ),
    consumer: z
      .string()
      .min(1)
      .optional()
      .describe(
        "This producer's consumer name in the group; default `<hostname>-<pid>`. A stable name (a StatefulSet pod name) re-reads its own unacknowledged entries at once on restart.",
      ),
    batch: z.number().int().positive().default(500).describe('Entries per `XREADGROUP` / `XAUTOCLAIM`.'),
    blockMs: z
      .number()
      .int()
      .positive()
      .default(2000)
      .describe('How long one `XREADGROUP` blocks waiting for new entries, in ms.'),
    claimIdleMs: z
      .number()
      .int()
      .positive()
      .default(60000)
      .describe(
        "Entries unacknowledged this long (ms) by a consumer that never held this lease are taken over (`XAUTOCLAIM`); an earlier lease holder's are taken over at once.",
      ),
    trimMaxLen: z
      .number()
      .int()
      .positive()
      .optional()
      .describe(
        'Keep about this many entries, acknowledged ones included; unset: trim every acknowledged entry. Unacknowledged entries are never trimmed.',
      ),
    startFrom: z
      .enum(['0', '$'])
      .default('0')
      .describe('Where a newly created group starts: `0` the whole stream, `$` only entries added from now on.'),
    reconcileIntervalMs: z
      .number()
      .int()
      .min(0)
      .default(0)
      .describe(
        'Full reconciliation on this schedule, in ms (0: only when the group is created or requested); for expirations and evictions, which write no entry.',
      ),
  })
  .strict()
  .prefault({});

/** The outbox mode's part of the configuration: `producer.outbox`, and the `src` of its jobs. */
export const outboxConfig = defineCaptureModeConfig({
  name: 'outbox',
  source: 'outbox',
  summary: 'a Redis Streams outbox the application writes',
  fields: {
    outbox: OutboxSchema.describe(
      '`mode: outbox`: the change stream the application writes ([Streams outbox](capture-modes.md#streams-outbox)).',
    ),
  },
});

/** What the outbox mode's code reads: the platform's sections and `producer.outbox`. */
export type OutboxAppConfig = ModeConfig<typeof outboxConfig>;
