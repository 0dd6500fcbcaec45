import type { EngineProduct } from '../../shared/sink/port';

/** A search engine the integration run started (or was given), by id: `opensearch-2`, `elasticsearch-8`, ... */
export interface TestEngine {
  id: string;
  product: EngineProduct;
  version: string;
  url: string;
  pid: number;
  /** Freezes the engine (SIGSTOP): it keeps its port but answers nothing. */
  pause(): void;
  resume(): void;
}

interface EngineEntry {
  id: string;
  product: EngineProduct;
  version: string;
  url: string;
  pid: number;
}

/** The engine `id` from SINK_TEST_ENGINES (JSON `[{id, product, version, url, pid}]`). */
export function testEngine(id: string): TestEngine {
  const raw = process.env.SINK_TEST_ENGINES;
  if (raw === undefined || raw.trim() === '') throw new Error(`SINK_TEST_ENGINES is not set; engine ${id} is needed`);
  const entries = JSON.parse(raw) as EngineEntry[];
  const entry = entries.find((e) => e.id === id);
  if (!entry) throw new Error(`SINK_TEST_ENGINES has no engine ${id} (it has ${entries.map((e) => e.id).join(', ')})`);
  return {
    ...entry,
    pause: () => process.kill(entry.pid, 'SIGSTOP'),
    resume: () => process.kill(entry.pid, 'SIGCONT'),
  };
}
