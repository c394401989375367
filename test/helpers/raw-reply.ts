import { readFileSync } from 'node:fs';
import { request, type Agent } from 'node:https';
import { performance } from 'node:perf_hooks';
import type { ClientCert } from './mtls-client.js';

/**
 * A reply with its headers as sent, one entry per header line, in order:
 * Node's `res.headers` joins repeated headers with ", ", which would hide a
 * second `x-ratelimit-remaining` (and a draft-03 `x-ratelimit-limit` value
 * has a ", " of its own).
 */
export interface RawReply {
  readonly status: number;
  readonly headers: ReadonlyArray<readonly [string, string]>;
  readonly body: string;
  /** From sending the request to the end of the reply. */
  readonly ms: number;
}

/** Every value of a header, in the order the reply carried them. */
export function headerValues(r: RawReply, name: string): string[] {
  return r.headers.filter(([k]) => k === name).map(([, v]) => v);
}

/** One mTLS POST to Envoy as `client`, on `agent`'s kept-alive connection or a fresh one. */
export function postRaw(port: number, ca: string, client: ClientCert, o: { path: string; headers?: Record<string, string>; body?: string; agent?: Agent }): Promise<RawReply> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1', port, servername: 'localhost', method: 'POST', path: o.path,
        headers: { host: 'model-serving.ml.svc.cluster.local', 'content-type': 'application/json', ...o.headers },
        ca: readFileSync(ca), cert: readFileSync(client.cert), key: readFileSync(client.key),
        agent: o.agent ?? false, timeout: 5000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const headers: Array<[string, string]> = [];
          for (let i = 0; i < res.rawHeaders.length; i += 2) headers.push([res.rawHeaders[i]!.toLowerCase(), res.rawHeaders[i + 1]!]);
          resolve({ status: res.statusCode ?? 0, headers, body: Buffer.concat(chunks).toString(), ms: performance.now() - t0 });
        });
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error('request timed out')));
    req.on('error', reject);
    req.end(o.body ?? '{"instances":[[1]]}');
  });
}
