import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { FastifyAdapter } from '@bull-board/fastify';
import type { FastifyInstance } from 'fastify';
import type { Logger } from '../../shared/platform/logger';
import {
  enableDefaultMetrics,
  registry,
  watchQueueDepth,
  watchQueuePaused,
  watchRebuildProgress,
  type RebuildProgressSource,
} from '../../shared/platform/metrics';
import type { SyncQueues } from '../../shared/core/queue';
import { assertSafeExposure, authHook, authSchemes, DASHBOARD_PATH, operatorsAllowed, type HttpConfig } from './auth';
import { createHardenedApp } from './hardening';
import { runChecks, type ReadinessCheck } from './readiness';

/**
 * The routes of a feature the surface serves (the search API, /failures), registered behind
 * the same hardening and credentials as everything else. The CLI builds them, so this layer
 * serves features without importing them.
 */
export interface RouteSet {
  register(app: FastifyInstance): void;
  /** A page the dashboard links to beside the queues. */
  dashboardLink?: { text: string; url: string };
}

export interface HttpSurfaceDeps {
  http: HttpConfig;
  /** Its partitions (and the queues of former partition counts) are shown on the dashboard and measured for the gauges. */
  queues: SyncQueues;
  readiness: readonly ReadinessCheck[];
  logger: Logger;
  /** Served after the surface's own routes, in this order. */
  routes?: readonly RouteSet[];
  /** The rebuild in progress, for the `rebuild_progress_ratio` gauge (features/maintenance/rebuild/status.ts). */
  rebuildProgress?: RebuildProgressSource;
}

export interface HttpSurface {
  /** The port listened on (the configured one, or the one picked for port 0). */
  port: number;
  url: string;
  /** From now on /readyz answers 503, so load balancers stop routing here while the process drains. */
  drain(): void;
  close(): Promise<void>;
}

export { DASHBOARD_PATH };

/**
 * The operator's HTTP surface: bull-board at /queues, Prometheus /metrics, /healthz and
 * /readyz. Everything but the two probes requires a credential whose role has the right
 * (auth.ts); without any credential it refuses (ConfigError) to listen beyond loopback.
 */
export async function startHttpSurface(deps: HttpSurfaceDeps): Promise<HttpSurface> {
  const { http } = deps;
  const { app, log, startDraining } = probedApp(http, deps.readiness, deps.logger);

  enableDefaultMetrics();
  const { queues } = deps;
  const unwatchDepth = watchQueueDepth(async () =>
    Promise.all(
      (await queues.everyQueue()).map(async (q) => ({
        partition: q.name,
        counts: await q.getJobCounts('waiting', 'active', 'delayed', 'failed'),
      })),
    ),
  );
  const unwatchPaused = watchQueuePaused(() =>
    Promise.all(queues.partitions.map(async (q) => ({ partition: q.name, paused: await q.isPaused() }))),
  );
  const unwatchRebuild = deps.rebuildProgress ? watchRebuildProgress(deps.rebuildProgress) : undefined;
  const unwatch = (): void => {
    unwatchDepth();
    unwatchPaused();
    unwatchRebuild?.();
  };
  app.get('/metrics', async (_request, reply) => {
    const body = await registry.metrics();
    return reply.header('content-type', registry.contentType).send(body);
  });

  const routes = deps.routes ?? [];
  for (const set of routes) set.register(app);
  const miscLinks = routes.flatMap((set) => (set.dashboardLink ? [set.dashboardLink] : []));

  const board = new FastifyAdapter();
  board.setBasePath(DASHBOARD_PATH);
  // One view across partitions: every partition's queue, and those of former partition counts
  // known when the surface starts (where jobs may still wait or have failed).
  const shown = await queues.everyQueue().catch(() => [...queues.partitions]);
  createBullBoard({
    // Without anyone who may act on jobs, the dashboard shows no action buttons at all.
    queues: shown.map((q) => new BullMQAdapter(q, { readOnlyMode: !operatorsAllowed(http) })),
    serverAdapter: board,
    options: { uiConfig: { boardTitle: 'redis-es-sync', ...(miscLinks.length > 0 ? { miscLinks } : {}) } },
  });
  await app.register(board.registerPlugin(), { prefix: DASHBOARD_PATH });

  const surface = await listen(app, http, unwatch);
  log.info(
    { url: surface.url, dashboard: `${surface.url}${DASHBOARD_PATH}`, auth: authSchemes(http) },
    'http surface listening',
  );
  return drainable(surface, startDraining);
}

export interface SearchSurfaceDeps {
  http: HttpConfig;
  /** The search API's routes (features/search/routes.ts). */
  search: RouteSet;
  /** What /readyz checks: the search API's own dependencies. */
  readiness: readonly ReadinessCheck[];
  logger: Logger;
}

/** `serve`: only the search API and the probes, behind the same credentials as the dashboard. */
export async function startSearchSurface(deps: SearchSurfaceDeps): Promise<HttpSurface> {
  const { http } = deps;
  const { app, log, startDraining } = probedApp(http, deps.readiness, deps.logger);
  deps.search.register(app);
  const surface = await listen(app, http, () => undefined);
  log.info({ url: surface.url, auth: authSchemes(http) }, 'search API listening');
  return drainable(surface, startDraining);
}

/**
 * What every surface starts from: the hardened app behind the credentials, refusing to listen
 * beyond loopback without one, with the public probes (/readyz answers 503 once draining).
 */
function probedApp(
  http: HttpConfig,
  readiness: readonly ReadinessCheck[],
  logger: Logger,
): { app: FastifyInstance; log: Logger; startDraining: () => void } {
  assertSafeExposure(http);
  const log = logger.child({ component: 'http' });
  const app = createHardenedApp(http, log);
  let draining = false;
  app.addHook('onRequest', authHook(http));
  app.get('/healthz', async () => ({ status: 'ok' }));
  registerReadiness(app, readiness, () => draining, log);
  return {
    app,
    log,
    startDraining: () => {
      draining = true;
    },
  };
}

/** A listening surface whose /readyz turns 503 on drain() and on close(), before it stops. */
function drainable(surface: Omit<HttpSurface, 'drain'>, startDraining: () => void): HttpSurface {
  return {
    ...surface,
    drain: startDraining,
    close() {
      startDraining();
      return surface.close();
    },
  };
}

/** `/readyz`: 503 while draining or while a dependency is down; the reasons go to the log only, the probe is public. */
function registerReadiness(
  app: FastifyInstance,
  readiness: readonly ReadinessCheck[],
  draining: () => boolean,
  log: Logger,
): void {
  let lastFailures = '';
  app.get('/readyz', async (_request, reply) => {
    if (draining()) return reply.code(503).send({ status: 'draining' });
    const result = await runChecks(readiness);
    const failures = Object.entries(result.checks).filter(([, r]) => r !== 'ok');
    const summary = failures.map(([name, r]) => `${name}: ${r}`).join('; ');
    if (summary !== lastFailures) {
      if (summary) log.warn({ failures: Object.fromEntries(failures) }, 'not ready');
      else log.info('ready');
      lastFailures = summary;
    }
    const checks = Object.fromEntries(
      Object.entries(result.checks).map(([name, r]) => [name, r === 'ok' ? 'ok' : 'down']),
    );
    return reply.code(result.ok ? 200 : 503).send({ status: result.ok ? 'ready' : 'unavailable', checks });
  });
}

async function listen(
  app: FastifyInstance,
  http: HttpConfig,
  unwatch: () => void,
): Promise<Omit<HttpSurface, 'drain'>> {
  try {
    await app.listen({ port: http.port, host: http.host });
  } catch (err) {
    unwatch();
    await app.close();
    throw err;
  }
  const address = app.server.address();
  const port = typeof address === 'object' && address !== null ? address.port : http.port;
  const url = `http://${http.host.includes(':') ? `[${http.host}]` : http.host}:${port}`;
  let closing: Promise<void> | undefined;
  return {
    port,
    url,
    close() {
      closing ??= (async () => {
        unwatch();
        await app.close();
      })();
      return closing;
    },
  };
}
