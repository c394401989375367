import { readFileSync } from 'node:fs';
import { request, type Agent } from 'node:https';

export interface ClientCert {
  readonly cert: string;
  readonly key: string;
}

export interface Reply {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: string;
}

/**
 * One HTTPS/1.1 request over a fresh mTLS connection. The path is sent
 * exactly as given (Node does not normalise it), so hostile paths reach
 * Envoy unchanged.
 */
export function mtlsRequest(
  port: number,
  ca: string,
  client: ClientCert | null,
  opts: { method?: string; path: string; headers?: Record<string, string>; body?: Buffer | string; host?: string; agent?: Agent },
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        servername: 'localhost',
        method: opts.method ?? 'GET',
        path: opts.path,
        headers: { host: opts.host ?? 'model-serving.ml.svc.cluster.local', ...opts.headers },
        ca: readFileSync(ca),
        ...(client ? { cert: readFileSync(client.cert), key: readFileSync(client.key) } : {}),
        // A fresh connection per call unless the caller brings a keep-alive agent.
        agent: opts.agent ?? false,
        timeout: 5000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error('request timed out')));
    req.on('error', reject);
    req.end(opts.body);
  });
}
