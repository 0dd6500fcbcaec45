import type { ConfigFlags } from '../../shared/platform/config/load';
import { onShutdown } from '../../shared/platform/shutdown';
import { createContext } from '../context';
import { startService, type ServiceParts } from '../service';

/**
 * `run`, `producer`, `worker`: start, then stop gracefully on SIGTERM/SIGINT. A signal during
 * start-up (waiting for a dependency, say) stops the wait and whatever had started.
 */
export async function runService(flags: ConfigFlags, parts: ServiceParts): Promise<void> {
  const ctx = createContext(flags);
  const abort = new AbortController();
  const starting = startService(ctx, parts, { signal: abort.signal });
  onShutdown(ctx.logger, async () => {
    abort.abort();
    const service = await starting.catch(() => undefined);
    // A failed start already stopped everything; close() is memoized.
    await (service ? service.stop() : ctx.close());
  });
  try {
    await starting;
  } catch (err) {
    // Stopped by a signal while starting: the shutdown handler reports and exits.
    if (abort.signal.aborted) return;
    throw err;
  }
}
