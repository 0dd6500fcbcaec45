import type { ConfigFlags } from '../../shared/config/load';
import { onShutdown } from '../../shared/shutdown';
import { createContext } from '../context';
import { readinessChecks, searchService } from '../service';
import { DASHBOARD_DEFAULT_PORT } from './dashboard';

/** `serve`: only the search API (and /healthz); captures and indexes nothing. */
export async function serveCommand(flags: ConfigFlags): Promise<void> {
  const ctx = createContext(flags);
  const { startSearchSurface } = await import('../../shared/http/server');
  const http = await startSearchSurface({
    http: { ...ctx.config.http, port: ctx.config.http.port || DASHBOARD_DEFAULT_PORT },
    search: searchService(ctx),
    readiness: readinessChecks(ctx),
    logger: ctx.logger,
  }).catch(async (err: unknown) => {
    await ctx.close();
    throw err;
  });
  onShutdown(ctx.logger, async () => {
    http.drain();
    await http.close();
    await ctx.close();
  });
}
