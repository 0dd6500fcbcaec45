import { createHash } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from '../../shared/platform/logger';
import { parseSearchBody } from './body';
import { parseSearchQuery, SearchRequestError } from './query';
import type { SearchService } from './service';
import { sendError } from '../../shared/platform/http-errors';

/** `GET /search/:index`, `POST /search/:index` (restricted query DSL) and `GET /doc/:index/:id`; auth is the surface's own onRequest hook. */
/** The search API as a route set for the HTTP surface. */
export function searchRoutes(search: SearchService, logger: Logger): { register(app: FastifyInstance): void } {
  return { register: (app) => registerSearchRoutes(app, search, logger) };
}

export function registerSearchRoutes(app: FastifyInstance, search: SearchService, logger: Logger): void {
  const log = logger.child({ component: 'search' });
  const limiter = new ClientLimiter(search.settings.maxConcurrentPerClient, search.settings.maxConcurrent);
  // One client's expensive searches must not take every Elasticsearch thread from the others.
  app.addHook('onRequest', async (request, reply) => {
    if (!request.routeOptions.url?.startsWith('/search/') && !request.routeOptions.url?.startsWith('/doc/'))
      return undefined;
    const client = clientOf(request);
    const refused = limiter.enter(client);
    if (refused === 'client') {
      return sendError(
        reply.header('retry-after', '1'),
        429,
        `more than ${search.settings.maxConcurrentPerClient} searches in flight from this client (search.maxConcurrentPerClient)`,
      );
    }
    if (refused === 'all')
      return sendError(
        reply.header('retry-after', '1'),
        429,
        `more than ${search.settings.maxConcurrent} searches in flight (search.maxConcurrent)`,
      );
    reply.raw.once('close', () => limiter.leave(client));
    return undefined;
  });
  const fail = (reply: FastifyReply, err: unknown): FastifyReply => {
    if (err instanceof SearchRequestError) return sendError(reply, err.status, err.message);
    log.error({ err }, 'search request failed');
    return sendError(reply, 503, 'search unavailable, try again');
  };

  app.get<{ Params: { index: string }; Querystring: Record<string, unknown> }>(
    '/search/:index',
    async (request, reply) => {
      try {
        const query = parseSearchQuery(request.query, search.settings);
        const { page, cache } = await search.search(request.params.index, query);
        // eslint-disable-next-line @typescript-eslint/return-await -- send() returns the reply itself, a thenable that settles once the response is written; fastify wants it returned, not awaited, and nothing after send() can throw into this catch.
        return reply.header('x-cache', cache).send(page);
      } catch (err) {
        return fail(reply, err);
      }
    },
  );

  app.post<{ Params: { index: string }; Body: unknown }>('/search/:index', async (request, reply) => {
    try {
      const query = parseSearchBody(request.body, search.settings);
      const { page, cache } = await search.search(request.params.index, query);
      // eslint-disable-next-line @typescript-eslint/return-await -- send() returns the reply itself, a thenable that settles once the response is written; fastify wants it returned, not awaited, and nothing after send() can throw into this catch.
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

/**
 * A client is an address with a credential: an application's instances share its search
 * token but not their addresses, so each gets its own allowance.
 */
function clientOf(request: FastifyRequest): string {
  const auth = request.headers.authorization;
  return `${request.ip} ${auth ? createHash('sha256').update(auth).digest('hex') : '-'}`;
}

/** In-flight requests per client and in all, each released when its answer is sent or its connection drops. */
class ClientLimiter {
  private readonly inFlight = new Map<string, number>();
  private total = 0;
  constructor(
    private readonly perClient: number,
    private readonly all: number,
  ) {}

  /** Undefined when admitted; otherwise which limit refused it. */
  enter(client: string): 'client' | 'all' | undefined {
    const n = this.inFlight.get(client) ?? 0;
    if (n >= this.perClient) return 'client';
    if (this.total >= this.all) return 'all';
    this.inFlight.set(client, n + 1);
    this.total++;
    return undefined;
  }

  leave(client: string): void {
    this.total = Math.max(0, this.total - 1);
    const n = (this.inFlight.get(client) ?? 1) - 1;
    if (n <= 0) this.inFlight.delete(client);
    else this.inFlight.set(client, n);
  }
}
