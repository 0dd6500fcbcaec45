import type { ConfigFlags } from '../../shared/platform/config/load';
import { createContext } from '../context';
import { readinessChecks, runSurface, searchService } from '../service';
import { DASHBOARD_DEFAULT_PORT } from './dashboard';

/** `serve`: only the search API (and /healthz, /readyz); captures and indexes nothing. */
export async function serveCommand(flags: ConfigFlags): Promise<void> {
  const ctx = createContext(flags);
  await runSurface(ctx, 'serve', ['source-redis', 'queue-redis', 'elasticsearch'], async () => {
    const [{ startSearchSurface }, { searchRoutes }] = await Promise.all([
      import('../../features/http/server'),
      import('../../features/search/routes'),
    ]);
    return startSearchSurface({
      http: { ...ctx.config.http, port: ctx.config.http.port || DASHBOARD_DEFAULT_PORT },
      search: searchRoutes(searchService(ctx), ctx.logger),
      readiness: readinessChecks(ctx),
      logger: ctx.logger,
    });
  });
}
