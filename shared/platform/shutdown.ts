import type { Logger } from './logger';

/**
 * Runs `stop` once on SIGTERM or SIGINT (drain, close connections), then exits. A second
 * signal, or a stop that outlasts `timeoutMs`, exits at once: jobs still active then are
 * taken over by other workers once their locks expire.
 */
export function onShutdown(logger: Logger, stop: () => Promise<void>, timeoutMs = 30000): void {
  let stopping = false;
  const handler = (signal: NodeJS.Signals): void => {
    if (stopping) {
      logger.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    stopping = true;
    logger.info({ signal }, 'shutting down: draining');
    const timer = setTimeout(() => {
      logger.error({ timeoutMs }, 'shutdown took too long: exiting');
      process.exit(1);
    }, timeoutMs);
    timer.unref();
    stop().then(
      () => {
        logger.info('stopped');
        process.exit(0);
      },
      (err: unknown) => {
        logger.error({ err }, 'error while stopping');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', handler);
  process.on('SIGINT', handler);
}
