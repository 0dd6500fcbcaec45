import { createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { esUrl } from './elasticsearch';

export interface EsGate {
  /** http://127.0.0.1:PORT, to give the tool as its Elasticsearch URL. */
  url: string;
  /** From now on `_bulk` requests (or those whose path contains `path`) wait, forwarded only on release. */
  hold(path?: string): void;
  /** Forwards every held request and stops holding. */
  release(): void;
  /** `_bulk` requests waiting right now. */
  held(): number;
  close(): Promise<void>;
}

/**
 * A pass-through proxy in front of the real Elasticsearch that can hold `_bulk` requests, so
 * a test can keep a bulk in flight for as long as it needs (a worker draining on shutdown).
 */
export async function startEsGate(): Promise<EsGate> {
  const target = new URL(esUrl());
  let holding = false;
  let heldPath = '_bulk';
  const waiting: (() => void)[] = [];

  const forward = (req: IncomingMessage, body: Buffer, res: ServerResponse): void => {
    const upstream = httpRequest(
      {
        host: target.hostname,
        port: target.port,
        method: req.method,
        path: req.url,
        headers: { ...req.headers, host: target.host },
      },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      },
    );
    upstream.on('error', () => {
      if (!res.headersSent) res.writeHead(502);
      res.end();
    });
    upstream.end(body);
  };

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      if (holding && (req.url ?? '').includes(heldPath)) waiting.push(() => forward(req, body, res));
      else forward(req, body, res);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    hold(path = '_bulk') {
      heldPath = path;
      holding = true;
    },
    release() {
      holding = false;
      for (const go of waiting.splice(0)) go();
    },
    held: () => waiting.length,
    async close() {
      holding = false;
      for (const go of waiting.splice(0)) go();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
