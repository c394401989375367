import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface AdminServer {
  readonly port: number;
  close(): Promise<void>;
}

/**
 * /metrics (Prometheus), /healthz (the process answers) and /readyz (a
 * policy is in force and gRPC is bound), on a port of their own so scraping
 * and probes never queue behind authorization traffic. `metrics` renders
 * the exposition text: one registry's, or (with --workers) every worker's
 * aggregated by the primary.
 */
export function startAdminServer(hostPort: string, metrics: () => Promise<string>, contentType: string, ready: () => boolean): Promise<AdminServer> {
  const colon = hostPort.lastIndexOf(':');
  const host = hostPort.slice(0, colon).replace(/^\[|\]$/g, '');
  const port = Number(hostPort.slice(colon + 1));
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    if (path === '/metrics') {
      metrics().then(
        (text) => res.writeHead(200, { 'content-type': contentType }).end(text),
        (err: Error) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`${err.message}\n`),
      );
      return;
    }
    if (path === '/healthz') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
      return;
    }
    if (path === '/readyz') {
      const ok = ready();
      res.writeHead(ok ? 200 : 503, { 'content-type': 'text/plain' }).end(ok ? 'ready\n' : 'not ready\n');
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
  });
  return new Promise((resolve, reject) => {
    server.once('error', (err) => reject(new Error(`cannot listen on ${hostPort} for metrics: ${err.message}`)));
    server.listen(port, host, () => {
      resolve({
        port: (server.address() as AddressInfo).port,
        close: () => new Promise<void>((r) => server.close(() => r())),
      });
    });
  });
}
