import type { Logger } from './logger';

/** One part of a process: started in order, stopped in reverse. */
export interface LifecycleStep {
  name: string;
  /** Omitted for a part that is already running when it is added (a connection). */
  start?: () => Promise<void>;
  stop: () => Promise<void>;
  /** This step's bound, decided when the stop begins (shorter when what it drains into is down). */
  stopTimeoutMs?: () => number;
  /** Runs even after the whole deadline passed (closing connections: what lets the process exit). */
  always?: boolean;
}

export interface StopOptions {
  logger: Logger;
  /** A step still running after this long is abandoned (logged) and the next one runs. */
  stepTimeoutMs: number;
  /** Whole stop: after it, the remaining steps are skipped (logged). */
  deadlineMs?: number;
}

/**
 * Runs every step's stop in the order given, each guarded and bounded: a step that fails or
 * hangs is logged and the rest still run, so one broken dependency cannot keep the others open.
 * Timers are cleared, so nothing of this keeps the process alive.
 */
export async function stopAll(steps: readonly Omit<LifecycleStep, 'start'>[], opts: StopOptions): Promise<void> {
  const deadline = opts.deadlineMs !== undefined ? Date.now() + opts.deadlineMs : Infinity;
  // Set when a step ran into the deadline itself: a timer may fire a millisecond before the clock says so.
  let expired = false;
  for (const step of steps) {
    const left = deadline - Date.now();
    const own = step.stopTimeoutMs?.() ?? opts.stepTimeoutMs;
    if ((expired || left <= 0) && !step.always) {
      opts.logger.warn({ step: step.name }, 'stop deadline reached: step skipped');
      continue;
    }
    const bound = left > 0 ? Math.min(own, left) : own;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), bound)));
    try {
      const outcome = await Promise.race([step.stop().then(() => 'ok' as const), timeout]);
      if (outcome === 'timeout') {
        if (bound < own) expired = true;
        opts.logger.warn({ step: step.name, ms: bound }, 'stop step did not finish in time: abandoned');
      }
    } catch (err) {
      opts.logger.warn({ step: step.name, err }, 'stop step failed; stopping the rest');
    } finally {
      clearTimeout(timer);
    }
  }
}

/**
 * Parts start in order; if one fails, the ones already started are stopped (in reverse) before
 * the error goes on. `stop` is memoized: signals, a failed start and the caller may all ask.
 */
export class Lifecycle {
  private readonly started: LifecycleStep[] = [];
  private stopping: Promise<void> | undefined;

  constructor(private readonly opts: StopOptions) {}

  /** Starts `step` (when it has a start) and records it for stopping; rolls back on failure. */
  async add(step: LifecycleStep): Promise<void> {
    if (this.stopping) throw new Error(`cannot start ${step.name}: stopping`);
    try {
      await step.start?.();
    } catch (err) {
      this.opts.logger.debug({ step: step.name, err }, 'start step failed: stopping what started');
      await this.stop();
      throw err;
    }
    this.started.push(step);
  }

  /** Stops every started part in reverse order of start; the same promise for every caller. */
  stop(): Promise<void> {
    this.stopping ??= stopAll([...this.started].reverse(), this.opts);
    return this.stopping;
  }

  get names(): string[] {
    return this.started.map((s) => s.name);
  }
}
