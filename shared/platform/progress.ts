/**
 * How long-running work (snapshot, verify, drain) reports that it moves. Only the interface
 * lives down here, so that work can report without knowing about terminals; the CLI supplies
 * the bar or the log lines (cli/progress.ts).
 */
export interface Progress {
  /** Sets or raises the expected total (it may be an estimate). */
  setTotal(total: number): void;
  increment(by: number): void;
  stop(): void;
}
