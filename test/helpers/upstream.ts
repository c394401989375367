import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { createServer as createH2Server, type Http2Server } from 'node:http2';
import type { AddressInfo } from 'node:net';

export interface RecordedRequest {
  readonly method: string;
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
  readonly bodyBytes: number;
}

export interface Upstream {
  readonly port: number;
  readonly requests: RecordedRequest[];
  close(): Promise<void>;
}

/**
 * An upstream that records what reached it and echoes it back as JSON, so a
 * test can assert on both the response and what the model server saw.
 * `h2c` serves HTTP/2 with prior knowledge (as Envoy talks gRPC upstream).
 */
export async function startUpstream(protocol: 'http1' | 'h2c' = 'http1'): Promise<Upstream> {
  const requests: RecordedRequest[] = [];
  const handler = (req: import('node:http').IncomingMessage | import('node:http2').Http2ServerRequest, res: import('node:http').ServerResponse | import('node:http2').Http2ServerResponse): void => {
    let bytes = 0;
    req.on('data', (c: Buffer) => (bytes += c.length));
    req.on('end', () => {
      const rec = { method: req.method ?? '', path: req.url ?? '', headers: req.headers as IncomingHttpHeaders, bodyBytes: bytes };
      requests.push(rec);
      const isGrpc = String(req.headers['content-type'] ?? '').startsWith('application/grpc');
      if (isGrpc) {
        // An empty gRPC reply: zero-length message, then OK trailers.
        (res as import('node:http2').Http2ServerResponse).writeHead(200, { 'content-type': 'application/grpc' });
        (res as import('node:http2').Http2ServerResponse).addTrailers({ 'grpc-status': '0' });
        res.end(Buffer.from([0, 0, 0, 0, 0]));
        return;
      }
      const body = JSON.stringify(rec);
      (res as import('node:http').ServerResponse).writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    });
  };
  const server: Server | Http2Server = protocol === 'h2c' ? createH2Server(handler) : createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return {
    port: (server.address() as AddressInfo).port,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        if ('closeAllConnections' in server) server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
