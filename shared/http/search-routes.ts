import type { FastifyInstance, FastifyReply } from 'fastify';
import type { Logger } from '../logger';
import { parseSearchBody } from '../search/body';
import { parseSearchQuery, SearchRequestError } from '../search/query';
import type { SearchService } from '../search/service';
import { sendError } from './hardening';

/** `GET /search/:index`, `POST /search/:index` (restricted query DSL) and `GET /doc/:index/:id`; auth is the surface's own onRequest hook. */
export function registerSearchRoutes(app: FastifyInstance, search: SearchService, logger: Logger): void {
  const log = logger.child({ component: 'search' });
  const fail = (reply: FastifyReply, err: unknown): FastifyReply => {
    if (err instanceof SearchRequestError) return sendError(reply, err.status, err.message);
    log.error({ err }, 'search request failed');
    return sendError(reply, 503, 'search unavailable, try again');
  };

  app.get<{ Params: { index: string }; Querystring: Record<string, unknown> }>('/search/:index', async (request, reply) => {
    try {
      const query = parseSearchQuery(request.query, search.settings);
      const { page, cache } = await search.search(request.params.index, query);
      return reply.header('x-cache', cache).send(page);
    } catch (err) {
      return fail(reply, err);
    }
  });

  app.post<{ Params: { index: string }; Body: unknown }>('/search/:index', async (request, reply) => {
    try {
      const query = parseSearchBody(request.body, search.settings);
      const { page, cache } = await search.search(request.params.index, query);
      return reply.header('x-cache', cache).send(page);
    } catch (err) {
      return fail(reply, err);
    }
  });

  app.get<{ Params: { index: string; id: string } }>('/doc/:index/:id', async (request, reply) => {
    try {
      return await search.document(request.params.index, request.params.id);
    } catch (err) {
      return fail(reply, err);
    }
  });
}
