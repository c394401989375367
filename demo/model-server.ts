import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A small KServe-style model server for the demo: the V1 protocol
 * (`POST /v1/models/<name>:predict` with `{"instances": [...]}`) and the
 * Open Inference (V2) protocol (`POST /v2/models/<name>/infer` with
 * `{"inputs": [{"name","shape","datatype","data"}]}`). The "model" scores
 * each instance by the mean of its numbers, which is enough to show a real
 * JSON round trip through Envoy. It echoes the caller infergate verified.
 */

const MAX_BODY = 16 * 1024 * 1024;
const V1 = /^\/v1\/models\/([A-Za-z0-9._-]+):predict$/;
const V2 = /^\/v2\/models\/([A-Za-z0-9._-]+)\/infer$/;

function score(values: unknown): number {
  const flat = Array.isArray(values) ? (values.flat(Infinity) as unknown[]) : [values];
  const nums = flat.filter((v): v is number => typeof v === 'number');
  if (nums.length === 0) return 0;
  const mean = nums.reduce((a, b) => a + b, 0) / nums.length;
  return Math.round((1 / (1 + Math.exp(-mean))) * 1e4) / 1e4;
}

function reply(res: ServerResponse, status: number, body: unknown, caller: string | undefined): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...(caller ? { 'x-model-saw-caller': caller } : {}) });
  res.end(text);
}

function handle(req: IncomingMessage, res: ServerResponse, body: Buffer): void {
  const caller = req.headers['x-infergate-caller'] as string | undefined;
  const path = (req.url ?? '').split('?')[0] ?? '';
  if (req.method === 'GET' && (path === '/v2/health/ready' || path === '/v2/health/live')) return reply(res, 200, { ready: true }, caller);
  if (req.method !== 'POST') return reply(res, 405, { error: 'use POST' }, caller);
  let doc: Record<string, unknown>;
  try {
    doc = JSON.parse(body.toString('utf8')) as Record<string, unknown>;
  } catch {
    return reply(res, 400, { error: 'body is not JSON' }, caller);
  }
  const v1 = V1.exec(path);
  if (v1) {
    if (!Array.isArray(doc.instances)) return reply(res, 400, { error: 'expected {"instances": [...]}' }, caller);
    return reply(res, 200, { model: v1[1], predictions: doc.instances.map(score) }, caller);
  }
  const v2 = V2.exec(path);
  if (v2) {
    const inputs = doc.inputs;
    if (!Array.isArray(inputs)) return reply(res, 400, { error: 'expected {"inputs": [...]}' }, caller);
    const outputs = (inputs as Array<{ name?: string; data?: unknown }>).map((i) => ({ name: `${i.name ?? 'input'}_score`, shape: [1], datatype: 'FP32', data: [score(i.data)] }));
    return reply(res, 200, { model_name: v2[1], outputs }, caller);
  }
  return reply(res, 404, { error: `no model route ${path}` }, caller);
}

export async function startModelServer(port: number, host = '127.0.0.1'): Promise<{ port: number; server: Server }> {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) req.destroy();
      else chunks.push(c);
    });
    req.on('end', () => handle(req, res, Buffer.concat(chunks)));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => reject(new Error(`model server cannot listen on ${host}:${port}: ${err.code ?? err.message}`)));
    server.listen(port, host, () => resolve());
  });
  return { port: (server.address() as AddressInfo).port, server };
}
