import type { FastifyInstance } from 'fastify';
import { displayKey } from '../bytes';
import { errorMessage } from '../errors';
import type { FailureStore } from '../failure-store';
import { parseReplayFilter, type ReplayFilter } from '../replay';

interface FailuresQuery {
  reason?: string;
  pattern?: string;
  since?: string;
  until?: string;
  limit?: string;
}

/** Most records one answer lists; the counts cover all of them. */
const MAX_LIMIT = 1000;

/**
 * GET /failures: the failure store as JSON, filtered like `replay` (reason, pattern, since,
 * until), most recent first, with the count per reason class. Behind the same credentials as
 * the dashboard; it reads only.
 */
export function registerFailureRoutes(app: FastifyInstance, store: FailureStore): void {
  app.get<{ Querystring: FailuresQuery }>('/failures', async (request, reply) => {
    const q = request.query;
    let filter: ReplayFilter;
    try {
      filter = parseReplayFilter(q);
    } catch (err) {
      return reply.code(400).send({ error: errorMessage(err).replace(/^invalid arguments:\s*-\s*/, '') });
    }
    const limit = q.limit === undefined ? 100 : Number(q.limit);
    if (!Number.isInteger(limit) || limit < 0 || limit > MAX_LIMIT) return reply.code(400).send({ error: `limit: must be a whole number from 0 to ${MAX_LIMIT}` });
    const records = (await store.matching(filter)).sort((a, b) => b.lastSeen - a.lastSeen);
    const byClass: Record<string, number> = {};
    for (const r of records) byClass[r.reasonClass] = (byClass[r.reasonClass] ?? 0) + 1;
    return {
      count: records.length,
      byClass,
      records: records.slice(0, limit).map((r) => ({ ...r, key: displayKey(r.key), firstSeen: new Date(r.firstSeen).toISOString(), lastSeen: new Date(r.lastSeen).toISOString() })),
    };
  });
}
