import { connect as tcpConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';

/**
 * One HTTP/1.1 GET whose request-target is written to the socket byte for
 * byte, with no client-side parsing or normalisation: Node's http client
 * refuses some of the targets under test (spaces, control characters), and
 * fetch() resolves dot segments before sending. Characters above U+007F go
 * out as their UTF-8 bytes, as a browser or curl would send them.
 */

export interface RawReply {
  /** 0 when no response came (the server closed, reset or timed out). */
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Buffer;
  /** Why there was no response, when status is 0. */
  readonly error?: string;
}

export interface TlsClient {
  readonly ca: Buffer;
  readonly cert: Buffer;
  readonly key: Buffer;
}

const HEAD_END = Buffer.from('\r\n\r\n');

/** Parses a complete response out of `buf`, or returns null while more bytes are needed (ended: no more will come). */
function parseReply(buf: Buffer, ended: boolean): RawReply | null {
  const headEnd = buf.indexOf(HEAD_END);
  if (headEnd === -1) return null;
  const lines = buf.subarray(0, headEnd).toString('latin1').split('\r\n');
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? '')?.[1] ?? 0);
  const headers: Record<string, string> = {};
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  const rest = buf.subarray(headEnd + 4);
  if (headers['transfer-encoding']?.toLowerCase() === 'chunked') {
    const chunks: Buffer[] = [];
    let at = 0;
    for (;;) {
      const lineEnd = rest.indexOf('\r\n', at);
      if (lineEnd === -1) return ended ? { status, headers, body: Buffer.concat(chunks) } : null;
      const size = parseInt(rest.subarray(at, lineEnd).toString('latin1'), 16);
      if (Number.isNaN(size)) return { status, headers, body: Buffer.concat(chunks) };
      if (size === 0) return { status, headers, body: Buffer.concat(chunks) };
      if (rest.length < lineEnd + 2 + size + 2) return ended ? { status, headers, body: Buffer.concat(chunks) } : null;
      chunks.push(rest.subarray(lineEnd + 2, lineEnd + 2 + size));
      at = lineEnd + 2 + size + 2;
    }
  }
  const length = headers['content-length'];
  if (length !== undefined) {
    const n = Number(length);
    if (rest.length >= n) return { status, headers, body: rest.subarray(0, n) };
    return ended ? { status, headers, body: rest } : null;
  }
  return ended ? { status, headers, body: rest } : null;
}

function exchange(socket: Socket, request: Buffer, timeoutMs: number): Promise<RawReply> {
  return new Promise((resolve) => {
    const received: Buffer[] = [];
    let settled = false;
    const finish = (reply: RawReply): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(reply);
    };
    const noReply = (error: string): void => {
      const partial = parseReply(Buffer.concat(received), true);
      finish(partial ?? { status: 0, headers: {}, body: Buffer.concat(received), error });
    };
    const timer = setTimeout(() => noReply('timed out'), timeoutMs);
    socket.on('data', (d: Buffer) => {
      received.push(d);
      const reply = parseReply(Buffer.concat(received), false);
      if (reply !== null) finish(reply);
    });
    socket.on('end', () => noReply('closed without a response'));
    socket.on('close', () => noReply('closed without a response'));
    socket.on('error', (err) => noReply(err.message));
    socket.write(request);
  });
}

function requestBytes(target: string, host: string): Buffer {
  return Buffer.from(`GET ${target} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`, 'utf8');
}

/** Sends GET `target` over plain TCP to 127.0.0.1:port. */
export function rawGet(port: number, target: string, host: string, timeoutMs = 5000): Promise<RawReply> {
  const socket = tcpConnect({ host: '127.0.0.1', port });
  return exchange(socket, requestBytes(target, host), timeoutMs);
}

/** Sends GET `target` over mTLS (HTTP/1.1 by ALPN) to 127.0.0.1:port, presenting the client certificate. */
export function rawGetTls(port: number, client: TlsClient, target: string, host: string, timeoutMs = 5000): Promise<RawReply> {
  const socket = tlsConnect({ host: '127.0.0.1', port, servername: 'localhost', ca: client.ca, cert: client.cert, key: client.key, ALPNProtocols: ['http/1.1'] });
  return exchange(socket, requestBytes(target, host), timeoutMs);
}

/** Runs `work` over `items` with at most `limit` in flight, keeping the results in order. */
export async function pool<T, R>(items: readonly T[], limit: number, work: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array<R>(items.length);
  let next = 0;
  const runners = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await work(items[i]!, i);
    }
  });
  await Promise.all(runners);
  return out;
}
