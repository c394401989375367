import { readFileSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { performance } from 'node:perf_hooks';
import type { ClientCert } from './mtls-client.js';

/** Headers every load request carries, so the upstream's records can be matched to what was sent and when. */
export const SEQ_HEADER = 'x-fault-seq';
export const SENT_HEADER = 'x-fault-sent-ms';

/** One request of a load run. Times are performance.now() milliseconds of this process (the upstream runs in it too). */
export interface Sent {
  readonly seq: number;
  /** Which of the load's connections (worker loops) sent it. */
  readonly conn: number;
  readonly caller: string;
  readonly path: string;
  readonly sentAt: number;
  /** 0 while in flight. */
  doneAt: number;
  /** HTTP status; 0 for a transport error or a client-side timeout. */
  status: number;
  error: string | null;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

export interface LoadCaller {
  readonly name: string;
  readonly cert: ClientCert;
}

export interface LoadOptions {
  readonly port: number;
  readonly ca: string;
  /** Connection i sends as callers[i % callers.length]. */
  readonly callers: readonly LoadCaller[];
  /** Concurrent keep-alive connections, each sending one request after another. */
  readonly connections: number;
  readonly path: string;
  readonly method?: string;
  readonly body?: string;
  readonly host?: string;
  /** Extra headers; may depend on the sequence number. */
  readonly headers?: (seq: number) => Record<string, string>;
  /** Client-side give-up time: a request not answered by then counts as hung. */
  readonly timeoutMs?: number;
  /** Stop after this many requests in all (default: until stop()). */
  readonly maxRequests?: number;
  /**
   * First open every connection with one request to this path (not recorded
   * in `sent`), and start the load only once all are open, so TLS handshakes
   * do not smear the start of the measured window.
   */
  readonly warmupPath?: string;
}

export interface Load {
  /** Every request so far, in the order sent. */
  readonly sent: readonly Sent[];
  /** Resolves when every connection is open (after the warm-up requests, if any). */
  readonly ready: Promise<void>;
  inFlight(): number;
  /** Stops sending, waits for the requests in flight, closes the connections. */
  stop(): Promise<Sent[]>;
  /** Resolves when every connection has finished (maxRequests reached, or stop()). */
  done(): Promise<Sent[]>;
}

/**
 * A steady stream of mTLS HTTP/1.1 requests over `connections` keep-alive
 * connections (one agent per connection, so each loop keeps its own socket
 * and Envoy's workers see several long-lived connections). Each request is
 * tagged with a sequence number and its send time.
 */
export function startLoad(o: LoadOptions): Load {
  const ca = readFileSync(o.ca);
  const sent: Sent[] = [];
  let seq = 0;
  let stopping = false;
  const agents: Agent[] = [];
  const one = (conn: number, agent: Agent, caller: LoadCaller, cert: Buffer, key: Buffer, warmup = false): Promise<void> => {
    const path = warmup ? o.warmupPath! : o.path;
    const s: Sent = {
      // Warm-up requests are numbered below zero and not recorded.
      seq: warmup ? -1 - conn : seq++, conn, caller: caller.name, path, sentAt: performance.now(), doneAt: 0, status: 0, error: null, headers: {}, body: '',
    };
    if (!warmup) sent.push(s);
    return new Promise((resolve) => {
      const finish = (status: number, error: string | null): void => {
        if (s.doneAt !== 0) return;
        s.doneAt = performance.now();
        s.status = status;
        s.error = error;
        resolve();
      };
      const req = request(
        {
          host: '127.0.0.1', port: o.port, servername: 'localhost', method: o.method ?? 'POST', path, agent,
          ca, cert, key, timeout: o.timeoutMs ?? 5000,
          headers: { host: o.host ?? 'model-serving.ml.svc.cluster.local', [SEQ_HEADER]: String(s.seq), [SENT_HEADER]: s.sentAt.toFixed(3), ...o.headers?.(s.seq) },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            s.headers = res.headers;
            s.body = Buffer.concat(chunks).toString();
            finish(res.statusCode ?? 0, null);
          });
          res.on('error', (e) => finish(0, e.message));
        },
      );
      req.on('timeout', () => req.destroy(new Error(`no reply within ${o.timeoutMs ?? 5000} ms`)));
      req.on('error', (e) => finish(0, e.message));
      req.end(o.body ?? '{}');
    });
  };
  let opened = 0;
  let allOpen!: () => void;
  const ready = new Promise<void>((resolve) => (allOpen = resolve));
  const loops = Array.from({ length: o.connections }, async (_, conn) => {
    const caller = o.callers[conn % o.callers.length]!;
    const cert = readFileSync(caller.cert.cert);
    const key = readFileSync(caller.cert.key);
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    agents.push(agent);
    if (o.warmupPath !== undefined) await one(conn, agent, caller, cert, key, true);
    if (++opened === o.connections) allOpen();
    await ready;
    while (!stopping && (o.maxRequests === undefined || seq < o.maxRequests)) {
      await one(conn, agent, caller, cert, key);
    }
  });
  const all = Promise.all(loops).then(() => {
    for (const a of agents) a.destroy();
    return sent;
  });
  return {
    sent,
    ready,
    inFlight: () => sent.filter((s) => s.doneAt === 0).length,
    stop: () => {
      stopping = true;
      return all;
    },
    done: () => all,
  };
}

/** Polls `cond` every `everyMs` until it holds; fails with `what` after `timeoutMs`. */
export async function until(what: string, cond: () => boolean | Promise<boolean>, timeoutMs: number, everyMs = 20): Promise<number> {
  const t0 = performance.now();
  for (;;) {
    if (await cond()) return performance.now() - t0;
    if (performance.now() - t0 > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
