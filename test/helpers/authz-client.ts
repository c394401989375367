import * as grpc from '@grpc/grpc-js';
import type { CheckResponse } from '../../ext-authz/src/check-response.js';
import { authorizationClient } from '../../ext-authz/src/protos.js';

export interface AuthzClient {
  check(req: unknown): Promise<CheckResponse>;
  close(): void;
}

/** A plain grpc-js client of the server's own proto definitions. */
export function authzClient(address: string): AuthzClient {
  const Client = authorizationClient();
  const client = new Client(address, grpc.credentials.createInsecure());
  return {
    check: (req) =>
      new Promise((resolve, reject) => {
        (client as unknown as { Check: (r: unknown, cb: (e: Error | null, res: CheckResponse) => void) => void }).Check(
          req,
          (err, res) => (err ? reject(err) : resolve(res)),
        );
      }),
    close: () => client.close(),
  };
}

/** A CheckRequest as Envoy's HTTP ext_authz filter sends it. */
export function httpCheck(principal: string | undefined, method: string, path: string, host = 'model-serving.ml.svc.cluster.local', headers: Record<string, string> = {}) {
  return {
    attributes: {
      source: principal === undefined ? {} : { principal },
      destination: { principal: 'spiffe://cluster.local/ns/ml/sa/model' },
      request: { http: { id: 'req-1', method, path, host, headers: { ':path': path, ':method': method, ...headers }, protocol: 'HTTP/1.1' } },
    },
  };
}
