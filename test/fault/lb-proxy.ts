import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A small round-robin HTTP load balancer on 127.0.0.1, as the fault test puts in front of two
 * Gatehouse instances. Each request goes to the next backend; a backend that refuses the
 * connection (a dead or not yet listening instance) is skipped for the next one, which is safe for
 * any method since nothing was sent. A backend that fails after taking the request (killed
 * mid-request) is not retried — the request may have done its work — and the client gets
 * `502` with `x-proxy-error` (or a cut connection when the answer had begun), as from a real
 * load balancer. The proxy appends the client's address to `X-Forwarded-For`.
 */
export interface LoadBalancer {
  url: string;
  port: number;
  /** How many requests each backend answered (by "host:port"). */
  served: Map<string, number>;
  /** Connection refusals skipped to the next backend. */
  skipped: number;
  close(): Promise<void>;
}

export const PROXY_ERROR_HEADER = 'x-proxy-error';

export async function startLoadBalancer(backends: Array<{ host: string; port: number }>): Promise<LoadBalancer> {
  let next = 0;
  const served = new Map<string, number>();
  const lb = { skipped: 0 };

  const forward = (req: IncomingMessage, res: ServerResponse, body: Buffer, order: Array<{ host: string; port: number }>) => {
    const backend = order[0];
    if (!backend) {
      res.writeHead(502, { 'content-type': 'text/plain', [PROXY_ERROR_HEADER]: 'no-backend' });
      res.end('proxy: no backend accepted the connection');
      return;
    }
    const headers = { ...req.headers };
    const xff = req.headers['x-forwarded-for'];
    headers['x-forwarded-for'] = `${xff ? `${xff}, ` : ''}${req.socket.remoteAddress ?? '127.0.0.1'}`;
    headers['content-length'] = String(body.length);
    delete headers['transfer-encoding'];
    delete headers.connection;
    let answered = false;
    const upstream = request({ host: backend.host, port: backend.port, method: req.method, path: req.url, headers, agent: false }, (up) => {
      answered = true;
      const key = `${backend.host}:${backend.port}`;
      served.set(key, (served.get(key) ?? 0) + 1);
      const raw: string[] = [];
      for (let i = 0; i < up.rawHeaders.length; i += 2) {
        const name = up.rawHeaders[i]!;
        if (/^(connection|keep-alive|transfer-encoding)$/i.test(name)) continue;
        raw.push(name, up.rawHeaders[i + 1]!);
      }
      res.writeHead(up.statusCode ?? 502, raw);
      up.pipe(res);
      up.on('error', () => res.destroy());
      up.on('aborted', () => res.destroy());
    });
    upstream.on('error', (err: NodeJS.ErrnoException) => {
      if (answered) {
        res.destroy(); // the answer had begun: the client sees a cut connection
        return;
      }
      if (err.code === 'ECONNREFUSED') {
        lb.skipped++;
        forward(req, res, body, order.slice(1));
        return;
      }
      if (!res.headersSent) {
        res.writeHead(502, { 'content-type': 'text/plain', [PROXY_ERROR_HEADER]: err.code ?? 'upstream-error' });
        res.end(`proxy: the backend failed (${err.code ?? err.message})`);
      } else res.destroy();
    });
    upstream.end(body);
  };

  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const start = next++ % backends.length;
      const order = [...backends.slice(start), ...backends.slice(0, start)];
      forward(req, res, Buffer.concat(chunks), order);
    });
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    served,
    get skipped() {
      return lb.skipped;
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
