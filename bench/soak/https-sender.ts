import { readFileSync } from 'node:fs';
import { Agent, request as httpsRequest } from 'node:https';
import { now } from './clock.js';
import { BODY, HOST, httpsPick } from './request-mix.js';
import type { SendContext, Sender } from './sender.js';

/** The Envoy phase's sender: HTTPS POSTs over keep-alive connections, one pool (and client certificate) per identity. */
export function httpsSender(ctx: SendContext): Sender {
  const { start } = ctx;
  const pki = start.pki!;
  const ca = readFileSync(pki.ca);
  // One keep-alive pool per identity: each presents its own client certificate.
  const agents = new Map<string, Agent>();
  for (const [who, c] of Object.entries(pki.clients)) {
    agents.set(who, new Agent({ keepAlive: true, maxSockets: 64, ca, cert: readFileSync(c.cert), key: readFileSync(c.key), servername: 'localhost' }));
  }
  let distinctN = 0;
  return {
    close: () => { for (const a of agents.values()) a.destroy(); },
    send: (scheduled) => {
      const q = httpsPick(ctx.random, ctx.isDistinct(), distinctN);
      if (q.distinct) distinctN++;
      let settled = false;
      const done = (status: number | null, err?: string): void => {
        if (settled) return;
        settled = true;
        ctx.settled();
        if (status === null) return ctx.error(err ?? 'no answer');
        if (!q.expect.includes(status)) return ctx.error(`HTTP ${status} for ${q.who}${q.distinct ? ' (new path)' : ''}`, `${q.path}: ${JSON.stringify(err ?? '')}`);
        const bucket = ctx.bucket();
        bucket.answered++;
        if (status === q.ok) {
          bucket.ok++;
          bucket.h.add(now() - scheduled);
        } else bucket.rejected[String(status)] = (bucket.rejected[String(status)] ?? 0) + 1;
      };
      const req = httpsRequest({
        host: '127.0.0.1', port: start.port, method: 'POST', path: q.path, agent: agents.get(q.who)!,
        headers: { host: HOST, 'content-type': 'application/json', 'content-length': Buffer.byteLength(BODY) },
      }, (res) => {
        let body = '';
        res.on('data', (d: Buffer) => { if (body.length < 200) body += d.toString(); });
        res.on('error', (e) => done(null, `response: ${e.message}`));
        res.on('end', () => done(res.statusCode ?? 0, body.slice(0, 200)));
      });
      const timer = setTimeout(() => { req.destroy(new Error(`no answer within ${start.timeoutMs} ms`)); }, Math.max(1, scheduled + start.timeoutMs - now()));
      req.on('close', () => clearTimeout(timer));
      req.on('error', (e) => done(null, (e as NodeJS.ErrnoException).code ?? e.message));
      req.end(BODY);
    },
  };
}
