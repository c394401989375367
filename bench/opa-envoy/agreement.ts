// The table of requests both policies must decide alike (cases.json), and
// the check the benchmark runs before measuring: every request in the table
// sent over gRPC to the real servers, each answer compared with the table.
// The same table is checked against infergate's policy in-process and against
// policy.rego with `opa test` by test/bench/opa-envoy-policy.test.ts.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { authorizationClient } from '../../ext-authz/src/protos.js';
import { CHECKED_DENY_MARKER, OPA_ENVOY_DIR } from './peer.js';

export const CASES_FILE = join(OPA_ENVOY_DIR, 'cases.json');

export interface Case {
  name: string;
  /** The caller's SPIFFE ID (source.principal); null: no client certificate. */
  principal: string | null;
  method: string;
  host: string;
  path: string;
  allowed: boolean;
  /** infergate's reason code for this request. */
  code: string;
}

export function loadCases(): Case[] {
  return (JSON.parse(readFileSync(CASES_FILE, 'utf8')) as { cases: Case[] }).cases;
}

/** The CheckRequest Envoy sends for the case (the fields both servers read). */
export function caseRequest(c: Case): object {
  return {
    attributes: {
      source: c.principal === null ? {} : { principal: c.principal },
      request: { http: { method: c.method, host: c.host, path: c.path, headers: { ':authority': c.host, ':method': c.method, ':path': c.path } } },
    },
  };
}

type CheckResponse = { status?: { code?: number }; ok_response?: unknown; denied_response?: unknown };
type Client = { Check(req: object, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res: CheckResponse) => void): void; close(): void };

/**
 * Whether the server allowed the request: status OK without a denied
 * response is an allow (OPA-Envoy sends no ok_response for a boolean
 * decision); PERMISSION_DENIED is a deny, and so is the error OPA-Envoy
 * returns when bench/opa-envoy/checked.rego turns a deny into one.
 */
function answer(client: Client, c: Case): Promise<boolean> {
  return new Promise((resolve, reject) => {
    client.Check(caseRequest(c), { deadline: Date.now() + 5000 }, (err, res) => {
      if (err) {
        if (err.details.includes(CHECKED_DENY_MARKER)) resolve(false);
        else reject(new Error(`"${c.name}": gRPC error ${err.code} ${err.details}`));
        return;
      }
      const code = res.status?.code ?? 0;
      if (code === 0 && res.denied_response === undefined) resolve(true);
      else if (code === 7) resolve(false);
      else reject(new Error(`"${c.name}": unexpected answer ${JSON.stringify(res)}`));
    });
  });
}

/** Sends every case to the server on `port`; returns one line per case whose answer differs from the table. */
export async function disagreements(port: number, cases: Case[]): Promise<string[]> {
  const Client = authorizationClient();
  const client = new Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure()) as unknown as Client;
  try {
    const out: string[] = [];
    for (const c of cases) {
      const allowed = await answer(client, c);
      if (allowed !== c.allowed) out.push(`"${c.name}": ${allowed ? 'allowed' : 'denied'}, expected ${c.allowed ? 'allowed' : `denied (${c.code})`}`);
    }
    return out;
  } finally {
    client.close();
  }
}
