import { SingleBar, Presets } from 'cli-progress';
import type { Logger } from '../shared/platform/logger';
import type { Progress } from '../shared/platform/progress';

/**
 * A progress bar on a terminal, periodic log lines otherwise (containers, CI, pipes), so a
 * long snapshot always shows that it moves.
 */
export function createProgress(
  label: string,
  logger: Logger,
  opts: { tty?: boolean; logEveryMs?: number } = {},
): Progress {
  // @types/node types isTTY as boolean, but a stderr that is a pipe or file has no isTTY at all.
  // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-conversion -- see above
  const tty = opts.tty ?? Boolean(process.stderr.isTTY);
  let done = 0;
  let total = 0;
  const started = Date.now();
  if (tty) {
    const bar = new SingleBar(
      {
        format: `${label} [{bar}] {percentage}% | {value}/{total} | {rate}/s | eta {eta_formatted}`,
        stream: process.stderr,
        hideCursor: true,
      },
      Presets.shades_classic,
    );
    bar.start(0, 0, { rate: 0 });
    return {
      setTotal(t) {
        total = Math.max(t, done);
        bar.setTotal(total);
      },
      increment(by) {
        done += by;
        if (done > total) bar.setTotal((total = done));
        bar.update(done, { rate: Math.round(done / Math.max((Date.now() - started) / 1000, 0.001)) });
      },
      stop() {
        bar.stop();
      },
    };
  }
  const log = logger.child({ progress: label });
  const every = opts.logEveryMs ?? 5000;
  const report = (final: boolean): void => {
    const seconds = Math.max((Date.now() - started) / 1000, 0.001);
    const all = Math.max(total, done);
    const rate = done / seconds;
    // Unknown until something moved: an ETA from a rate of 0 would be infinite.
    const eta = !final && rate > 0 && all > done ? { etaSeconds: Math.round((all - done) / rate) } : {};
    log.info(
      { done, total: all, perSecond: Math.round(rate), ...eta },
      final ? `${label} finished` : `${label} in progress`,
    );
  };
  const timer = setInterval(() => report(false), every);
  timer.unref();
  return {
    setTotal(t) {
      total = t;
    },
    increment(by) {
      done += by;
    },
    stop() {
      clearInterval(timer);
      report(true);
    },
  };
}
