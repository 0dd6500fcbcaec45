/**
 * Runs `fn` until it succeeds, every 100 ms, `attempts` times at most: for writes a Redis
 * refuses while a failover settles (CLUSTERDOWN, READONLY, a closed connection).
 */
export async function persist(fn: () => Promise<unknown>, attempts = 100): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await fn();
      return;
    } catch (err) {
      if (attempt >= attempts) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}
