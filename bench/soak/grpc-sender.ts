import * as grpc from '@grpc/grpc-js';
import { authorizationService } from '../../ext-authz/src/protos.js';
import { checkResult } from './check-result.js';
import { now } from './clock.js';
import { grpcDistinct, grpcHotSet, HOST, type GrpcReq } from './request-mix.js';
import type { SendContext, Sender } from './sender.js';

/** The server phase's sender: Authorization/Check over one gRPC channel (grpc-js), each answer checked against the manifest's decision. */
export async function grpcSender(ctx: SendContext): Promise<Sender> {
  const { start } = ctx;
  // Requests are encoded with the server's own proto definitions; the hot
  // set once, up front, so the generator spends its CPU on sending, not encoding.
  const check = authorizationService().Check!;
  const encode = check.requestSerialize;
  const checkRequest = (q: GrpcReq): Buffer => encode({
    attributes: {
      source: { principal: q.principal },
      destination: { principal: 'spiffe://cluster.local/ns/ml/sa/model' },
      request: { http: { method: q.method, path: q.path, host: HOST, headers: { ':path': q.path, ':method': q.method, ':authority': HOST }, protocol: 'HTTP/2' } },
    },
  });
  const hot = grpcHotSet().map((q) => ({ q, bytes: checkRequest(q) }));
  const client = new grpc.Client(`127.0.0.1:${start.port}`, grpc.credentials.createInsecure());
  await new Promise<void>((resolve, reject) => client.waitForReady(Date.now() + 10_000, (err) => (err ? reject(err) : resolve())));
  const identity = (b: Buffer): Buffer => b;
  let distinctN = 0;
  return {
    close: () => client.close(),
    send: (scheduled) => {
      let q: GrpcReq;
      let bytes: Buffer;
      if (ctx.isDistinct()) {
        q = grpcDistinct(distinctN++);
        bytes = checkRequest(q);
      } else ({ q, bytes } = hot[Math.floor(ctx.random() * hot.length)]!);
      client.makeUnaryRequest(check.path, identity, identity, bytes, { deadline: scheduled + start.timeoutMs }, (err, res) => {
        ctx.settled();
        if (err || !res) {
          const code = err ? (grpc.status[err.code] ?? String(err.code)) : 'no response';
          // A deadline's details carry timings; other statuses are grouped by their message.
          return ctx.error(err?.code === grpc.status.DEADLINE_EXCEEDED ? `gRPC ${code} (client deadline)` : `gRPC ${code}: ${err?.details ?? ''}`, err?.details);
        }
        const result = checkResult(res);
        const allowed = result === 'ok';
        if (allowed !== q.allow || result === null) return ctx.error(`wrong decision: ${result ?? 'neither ok nor denied'} where ${q.allow ? 'allow' : 'deny'} was expected`, `${q.method} ${q.path} by ${q.principal}`);
        const bucket = ctx.bucket();
        bucket.answered++;
        bucket.ok++;
        if (!allowed) bucket.rejected.deny = (bucket.rejected.deny ?? 0) + 1;
        bucket.h.add(now() - scheduled);
      });
    },
  };
}
