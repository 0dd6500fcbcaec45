import type { ConfigFlags } from '../../shared/config/load';
import { onShutdown } from '../../shared/shutdown';
import { createContext } from '../context';
import { startService, type ServiceParts } from '../service';

/** `run`, `producer`, `worker`: start, then stop gracefully on SIGTERM/SIGINT. */
export async function runService(flags: ConfigFlags, parts: ServiceParts): Promise<void> {
  const ctx = createContext(flags);
  const service = await startService(ctx, parts);
  onShutdown(ctx.logger, () => service.stop());
}
