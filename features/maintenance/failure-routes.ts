import type { FastifyInstance } from 'fastify';
import { displayKey } from '../../shared/core/bytes';
import { errorMessage } from '../../shared/platform/errors';
import type { FailureStore } from '../../shared/core/failure-store';
import { parseReplayFilter, type ReplayFilter } from './replay';

interface FailuresQuery {
  reason?: string;
  pattern?: string;
  since?: string;
  until?: string;
  limit?: string;
}

/** Most records one answer lists; the counts cover all of them. */
const MAX_LIMIT = 1000;

/** The failure store's page as a route set for the HTTP surface, linked from the dashboard. */
export function failureRoutes(store: FailureStore): {
  register(app: FastifyInstance): void;
  dashboardLink: { text: string; url: string };
} {
  return {
    register: (app) => registerFailureRoutes(app, store),
    dashboardLink: { text: 'Refused keys', url: '/failures' },
  };
}

/**
 * GET /failures: the failure store, filtered like `replay` (reason, pattern, since, until),
 * most recent first, with the count per reason class: JSON, or a page for a browser (the
 * dashboard links to it). Behind a viewer's credentials; it reads only.
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
    if (!Number.isInteger(limit) || limit < 0 || limit > MAX_LIMIT)
      return reply.code(400).send({ error: `limit: must be a whole number from 0 to ${MAX_LIMIT}` });
    const records = (await store.matching(filter)).sort((a, b) => b.lastSeen - a.lastSeen);
    const byClass: Record<string, number> = {};
    for (const r of records) byClass[r.reasonClass] = (byClass[r.reasonClass] ?? 0) + 1;
    const answer = {
      count: records.length,
      byClass,
      records: records.slice(0, limit).map((r) => ({
        ...r,
        key: displayKey(r.key),
        firstSeen: new Date(r.firstSeen).toISOString(),
        lastSeen: new Date(r.lastSeen).toISOString(),
      })),
    };
    if (!wantsHtml(request.headers.accept)) return answer;
    return reply.type('text/html; charset=utf-8').send(failuresPage(answer));
  });
}

export interface FailuresAnswer {
  count: number;
  byClass: Record<string, number>;
  records: {
    db: number;
    key: string;
    index: string;
    reasonClass: string;
    attempts: number;
    firstSeen: string;
    lastSeen: string;
    reason: string;
  }[];
}

/** A browser asks for HTML first; scripts and curl get JSON. */
function wantsHtml(accept: string | undefined): boolean {
  return accept !== undefined && /^text\/html\b/.test(accept);
}

const escapeHtml = (s: string): string => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** A plain table: no script and no outside resource, so the surface's CSP holds. */
export function failuresPage(a: FailuresAnswer): string {
  const classes = Object.entries(a.byClass)
    .map(([c, n]) => `${escapeHtml(c)} ${n}`)
    .join(', ');
  const head = ['db', 'key', 'index', 'class', 'attempts', 'first seen', 'last seen', 'reason']
    .map((h) => `<th>${h}</th>`)
    .join('');
  const rows = a.records
    .map((r) =>
      [String(r.db), r.key, r.index, r.reasonClass, String(r.attempts), r.firstSeen, r.lastSeen, r.reason]
        .map((v) => `<td>${escapeHtml(v)}</td>`)
        .join(''),
    )
    .map((cells) => `<tr>${cells}</tr>`)
    .join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>redis-es-sync: refused keys</title></head>
<body>
<h1>Refused keys: ${a.count}</h1>
<p>${classes || 'none'}. Replay them once the cause is fixed: <code>redis-es-sync replay --reason RE --pattern GLOB</code>. <a href="/queues">Queue dashboard</a></p>
<table border="1" cellpadding="4"><thead><tr>${head}</tr></thead><tbody>
${rows}
</tbody></table>
</body></html>
`;
}
