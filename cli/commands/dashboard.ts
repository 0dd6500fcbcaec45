import type { ConfigFlags } from '../../shared/config/load';
import { onShutdown } from '../../shared/shutdown';
import { createContext } from '../context';
import { startContextHttp } from '../service';

/** The port `dashboard` listens on when neither http.port nor --http-port sets one. */
export const DASHBOARD_DEFAULT_PORT = 3000;

/** `dashboard`: only the HTTP surface (bull-board, metrics, probes); captures and indexes nothing. */
export async function dashboardCommand(flags: ConfigFlags): Promise<void> {
  const ctx = createContext(flags);
  const http = await startContextHttp(ctx, ctx.config.http.port || DASHBOARD_DEFAULT_PORT).catch(async (err: unknown) => {
    await ctx.close();
    throw err;
  });
  onShutdown(ctx.logger, async () => {
    http.drain();
    await http.close();
    await ctx.close();
  });
}
