import type { ConfigFlags } from '../../shared/platform/config/load';
import { createContext } from '../context';
import { runSurface, startContextHttp } from '../service';

/** The port `dashboard` listens on when neither http.port nor --http-port sets one. */
export const DASHBOARD_DEFAULT_PORT = 3000;

/** `dashboard`: only the HTTP surface (bull-board, metrics, probes); captures and indexes nothing. */
export async function dashboardCommand(flags: ConfigFlags): Promise<void> {
  const ctx = createContext(flags);
  // The queue is what it shows; Elasticsearch and the source only feed /readyz.
  await runSurface(ctx, 'dashboard', ['queue-redis'], () =>
    startContextHttp(ctx, ctx.config.http.port || DASHBOARD_DEFAULT_PORT),
  );
}
