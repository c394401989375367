import { Agent } from 'node:https';
import { mtlsRequest, type Reply } from './mtls-client.js';
import type { Workload } from '../envoy/local-stack.js';
import { END_USERS, demoTokens, type EndUserName } from './issuer.js';
import { DEMO_STATE, type Stack } from './stack.js';

/** One scripted call (or burst of identical calls) and what it must get. */
interface Step {
  readonly who: Workload;
  /** The end user whose token goes along (`authorization: Bearer …`), if any. */
  readonly as?: EndUserName;
  readonly what: string;
  readonly method: string;
  readonly path: string;
  readonly body: string;
  readonly headers?: Record<string, string>;
  readonly times?: number;
  /** Send the calls alternately to the two replicas (Stack.replicas), not all to the first. */
  readonly spread?: boolean;
  /** Expected status of each call, in order. */
  readonly expect: readonly number[];
}

export interface Row {
  readonly caller: Workload;
  /** For whom: `tenant (tier)` of the token sent, `expired token`, or `-` for a workload's own call. */
  readonly user: string;
  readonly request: string;
  readonly status: number;
  readonly reason: string;
  readonly expected: number;
  readonly ok: boolean;
}

const v1 = (instances: unknown) => JSON.stringify({ instances });
const tensor = (bytes: number) => v1([Array.from({ length: Math.ceil(bytes / 6) }, (_, i) => i % 1000)]);

/** What a client might send hoping to be taken for acme's premium plan without a token. */
const FORGED_CLAIMS = {
  'x-infergate-tenant': 'acme',
  'x-infergate-tier': 'premium',
  'x-infergate-quota': 'tenant/premium/acme',
  'x-jwt-payload': Buffer.from(JSON.stringify({ tenant: 'acme', tier: 'premium', sub: 'mallory' })).toString('base64url'),
};

export const STEPS: readonly Step[] = [
  { who: 'api-gateway', as: 'premium', what: 'allowed prediction', method: 'POST', path: '/v1/models/sentiment:predict', body: v1([[0.2, 1.5, -0.3]]), expect: [200] },
  {
    who: 'api-gateway', as: 'premium', what: 'allowed V2 inference', method: 'POST', path: '/v2/models/sentiment/infer',
    body: JSON.stringify({ inputs: [{ name: 'text_embedding', shape: [1, 3], datatype: 'FP32', data: [0.1, 0.2, 0.3] }] }), expect: [200],
  },
  { who: 'web-frontend', what: 'caller with no rule', method: 'POST', path: '/v1/models/sentiment:predict', body: v1([[1]]), expect: [403] },
  { who: 'compromised', what: 'quarantined workload', method: 'POST', path: '/v1/models/sentiment:predict', body: v1([[1]]), expect: [403] },
  { who: 'foreign-agent', what: 'other trust domain', method: 'POST', path: '/v1/models/sentiment:predict', body: v1([[1]]), expect: [403] },
  { who: 'api-gateway', as: 'premium', what: 'path traversal', method: 'POST', path: '/v1/models/x%2F..%2F..%2Fadmin:predict', body: v1([[1]]), expect: [403] },
  { who: 'api-gateway', as: 'premium', what: 'dot-dot onto /admin', method: 'POST', path: '/v1/models/../../admin/reload', body: '{}', expect: [403] },
  // A servlet container would serve /v1/models/sentiment here: it strips ";" and what follows.
  { who: 'api-gateway', as: 'premium', what: 'servlet path parameter', method: 'POST', path: '/v1/models/sentiment;x=1:predict', body: v1([[1]]), expect: [403] },
  { who: 'api-gateway', as: 'premium', what: 'oversized tensor (256 KiB)', method: 'POST', path: '/v1/models/sentiment:predict', body: tensor(256 * 1024), expect: [413] },
  { who: 'batch-scorer', what: 'burst of 8 (budget 5, 1/s)', method: 'POST', path: '/v1/models/fraud:predict', body: v1([[3]]), times: 8, expect: [200, 200, 200, 200, 200, 429, 429, 429] },
  // Tenants and tiers: the gateway calls for end users, each judged by the verified token.
  { who: 'api-gateway', as: 'free', what: 'model outside the free tier', method: 'POST', path: '/v1/models/sentiment:predict', body: v1([[1]]), expect: [403] },
  { who: 'api-gateway', as: 'free', what: 'burst of 5 (budget 3, 1/s)', method: 'POST', path: '/v1/models/text-small:predict', body: v1([[1]]), times: 5, expect: [200, 200, 200, 429, 429] },
  // Same gateway, same moment: the budget is the tenant's, not the workload's.
  { who: 'api-gateway', as: 'premium', what: 'premium tenant right after', method: 'POST', path: '/v1/models/text-small:predict', body: v1([[1]]), times: 3, expect: [200, 200, 200] },
  { who: 'api-gateway', as: 'expired', what: 'expired token', method: 'POST', path: '/v1/models/sentiment:predict', body: v1([[1]]), expect: [401] },
  { who: 'web-frontend', as: 'premium', what: "a user's token, sent directly", method: 'POST', path: '/v1/models/sentiment:predict', body: v1([[1]]), expect: [403] },
  { who: 'api-gateway', what: 'forged tenant headers, no token', method: 'POST', path: '/v1/models/sentiment:predict', body: v1([[1]]), headers: FORGED_CLAIMS, expect: [401] },
  // Two replicas of the model, one tenant quota counted by the global rate-limit service:
  // together they admit the 4 of the budget, not 4 each (each replica's guard alone would admit all 8).
  {
    who: 'api-gateway', as: 'metered', what: 'two replicas, one quota of 4/h', method: 'POST', path: '/v1/models/sentiment:predict', body: v1([[1]]),
    times: 8, spread: true, expect: [200, 200, 200, 200, 429, 429, 429, 429],
  },
];

/** The steps a stack with one Envoy can play: all but those that need two replicas. */
export const SINGLE_ENVOY_STEPS: readonly Step[] = STEPS.filter((s) => !s.spread);

function reasonOf(r: Reply): string {
  const header = r.headers['x-infergate-reason'];
  if (typeof header === 'string') return header;
  // Envoy's ratelimit filter marks its own 429 (the global service said over limit); its body is empty.
  if (r.status === 429 && r.headers['x-envoy-ratelimited'] === 'true') return 'global_quota';
  try {
    const body = JSON.parse(r.body) as { code?: unknown };
    if (typeof body.code === 'string') return body.code;
  } catch {
    // Not JSON: fall through.
  }
  if (r.status === 200) return 'allowed';
  return r.headers['grpc-status'] ? `grpc-status ${String(r.headers['grpc-status'])}` : '-';
}

function userOf(step: Step): string {
  if (step.as === undefined) return '-';
  if (step.as === 'expired') return 'expired token';
  const u = END_USERS[step.as];
  return `${u.tenant} (${u.tier})`;
}

/**
 * Plays every step against Envoy, one mTLS connection per call, as the named
 * workload, with the named end user's token. It needs only Envoy's port, the
 * PKI and the tokens (by default the demo's, from .demo/). Without
 * `replicas` (a stack with one Envoy, like the compose stack) the steps that
 * need two replicas are left out.
 */
export async function playScene(stack: Pick<Stack, 'ports' | 'pki'> & Partial<Pick<Stack, 'tokens' | 'replicas'>>): Promise<Row[]> {
  const { tokens } = stack.tokens ?? (await demoTokens(DEMO_STATE));
  const rows: Row[] = [];
  for (const step of stack.replicas ? STEPS : SINGLE_ENVOY_STEPS) {
    const n = step.times ?? 1;
    // A burst reuses one connection so it takes milliseconds, not a TLS handshake per call:
    // the bucket must not refill mid-burst, even on a busy machine. A spread burst keeps one per replica.
    const agents = n > 1 ? [new Agent({ keepAlive: true, maxSockets: 1 }), new Agent({ keepAlive: true, maxSockets: 1 })] : [];
    const headers = { 'content-type': 'application/json', ...step.headers, ...(step.as ? { authorization: `Bearer ${tokens[step.as]}` } : {}) };
    for (let i = 0; i < n; i++) {
      const replica = step.spread ? i % 2 : 0;
      const port = step.spread ? stack.replicas![replica]! : stack.ports.envoy;
      const agent = agents[replica];
      const where = step.spread ? `, replica ${replica + 1}` : '';
      const label = `${step.method} ${step.path.length > 44 ? step.path.slice(0, 41) + '...' : step.path}${n > 1 ? `  (${step.what}, #${i + 1}${where})` : `  (${step.what})`}`;
      let status = 0;
      let reason = '';
      try {
        const r = await mtlsRequest(port, stack.pki.caCert, stack.pki.client(step.who), {
          method: step.method, path: step.path, body: step.body, headers, ...(agent ? { agent } : {}),
        });
        status = r.status;
        reason = reasonOf(r);
      } catch (err) {
        reason = `connection failed: ${(err as Error).message}`;
      }
      const expected = step.expect[i] ?? step.expect[step.expect.length - 1]!;
      rows.push({ caller: step.who, user: userOf(step), request: label, status, reason, expected, ok: status === expected });
    }
    for (const a of agents) a.destroy();
  }
  return rows;
}

export function formatTable(rows: readonly Row[]): string {
  const head = ['caller', 'for', 'request', 'status', 'reason', ''];
  const cells = rows.map((r) => [r.caller, r.user, r.request, String(r.status), r.reason, r.ok ? 'ok' : `EXPECTED ${r.expected}`]);
  const widths = head.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  const line = (c: string[]) => c.map((v, i) => v.padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.map(line)].join('\n');
}
