import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * The Envoy phase's upstream, in the bench's own process: answers every
 * request with 200 and a small JSON body naming the caller ext_authz
 * verified; keeps nothing. (demo/model-server.ts is not used: it answers a
 * V2 /infer path with 400 unless the body is in the V2 form, and the soak
 * measures the filters and ext_authz, not a model.)
 */
export async function startEcho(): Promise<{ port: number; server: Server }> {
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      const body = JSON.stringify({ ok: true, caller: req.headers['x-infergate-caller'] ?? null });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    });
  });
  // Envoy keeps upstream connections open; a Node-side idle close would race with reuse (spurious 503s).
  server.keepAliveTimeout = 0;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return { port: (server.address() as AddressInfo).port, server };
}

/** Closes the echo upstream and every connection Envoy holds to it. */
export function stopEcho(server: Server): Promise<void> {
  return new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); });
}
