import { readFileSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuthzProcess } from '../helpers/authz-process.js';
import { startE2eStack, type E2eStack } from '../helpers/e2e-stack.js';
import { mtlsRequest } from '../helpers/mtls-client.js';
import { EXAMPLE_MANIFEST } from '../helpers/paths.js';
import type { Pki } from '../helpers/pki.js';
import type { Upstream } from '../helpers/upstream.js';

const IDS = {
  gateway: 'spiffe://cluster.local/ns/gateway/sa/api-gateway',
  stranger: 'spiffe://cluster.local/ns/web/sa/frontend',
  compromised: 'spiffe://cluster.local/ns/ml/sa/compromised',
  foreign: 'spiffe://evil.example/ns/gateway/sa/api-gateway',
};
const PREDICT = '/v1/models/bert:predict';

describe('ext-authz through the real Envoy (mTLS, ext_authz filter, failure_mode_allow false)', () => {
  let stack: E2eStack;
  let pki: Pki;
  let upstream: Upstream;
  let authz: AuthzProcess;
  let manifest: string;
  let port: number;

  const call = (who: keyof typeof IDS | null, path = PREDICT, headers: Record<string, string> = {}) =>
    mtlsRequest(port, pki.caCert, who === null ? null : pki.client(who), { method: 'POST', path, headers, body: '{"instances":[[1,2,3]]}' });

  beforeAll(async () => {
    stack = await startE2eStack({ name: 'authz', manifest: readFileSync(EXAMPLE_MANIFEST, 'utf8'), clients: IDS });
    ({ pki, upstream, authz, manifest, port } = stack);
  });

  afterAll(async () => {
    await stack?.stop();
  });

  it('lets an allowed caller reach the model server, which sees the verified identity and not an injected one', async () => {
    const before = upstream.requests.length;
    const res = await call('gateway', PREDICT, { 'x-infergate-caller': IDS.foreign, 'x-infergate-rule': 'forged' });
    expect(res.status).toBe(200);
    const seen = upstream.requests.slice(before);
    expect(seen).toHaveLength(1);
    expect(seen[0]!.headers['x-infergate-caller']).toBe(IDS.gateway);
    expect(seen[0]!.headers['x-infergate-rule']).toBe('gateway-predicts');
    expect(seen[0]!.path).toBe(PREDICT);
  });

  it.each([
    ['a caller with no matching rule', 'stranger', PREDICT, 'no_matching_rule'],
    ['a quarantined caller', 'compromised', PREDICT, 'quarantined'],
    ['a caller from another trust domain', 'foreign', PREDICT, 'foreign_trust_domain'],
    ['a hostile path (encoded slash)', 'gateway', '/v1/models/a%2F..%2F..%2Fadmin:predict', 'invalid_path'],
    ['a path parameter, which servlet containers strip', 'gateway', '/v1/models/bert;x=/..:predict', 'invalid_path'],
    ['an encoded semicolon', 'gateway', '/v1/models/bert%3B:predict', 'invalid_path'],
    // Envoy resolves these (normalize_path) before the check, so the denied route is what is judged.
    ['a traversal that lands on a denied route', 'gateway', '/v1/models/../../admin/users', 'denied_by_rule'],
    ['a traversal that climbs above the root onto a denied route', 'gateway', '/v1/../../admin', 'denied_by_rule'],
    ['an encoded traversal onto a denied route', 'gateway', '/v1/%2e%2e/admin//users', 'denied_by_rule'],
  ] as const)('gives %s 403 with the reason', async (_name, who, path, reason) => {
    const before = upstream.requests.length;
    const res = await call(who, path);
    expect(res.status).toBe(403);
    expect(res.headers['x-infergate-reason']).toBe(reason);
    expect(JSON.parse(res.body)).toMatchObject({ code: reason });
    expect(upstream.requests.length).toBe(before);
  });

  it('authorises the path Envoy forwards: dot segments and slashes resolved once, for both', async () => {
    const before = upstream.requests.length;
    const res = await call('gateway', '/v1/models/x/..//normalised:predict');
    expect(res.status).toBe(200);
    expect(upstream.requests.slice(before).map((r) => r.path)).toEqual(['/v1/models/normalised:predict']);
    await expect.poll(() => readFileSync(stack.decisionLog, 'utf8'), { timeout: 2000 }).toContain('"path":"/v1/models/normalised:predict","result":"allow"');
  });

  it('does not let a client without a certificate through', async () => {
    const before = upstream.requests.length;
    await expect(call(null)).rejects.toThrow();
    expect(upstream.requests.length).toBe(before);
  });

  it('changes decisions within a second of the manifest being edited while Envoy runs', async () => {
    expect((await call('stranger')).status).toBe(403);
    const edited = readFileSync(EXAMPLE_MANIFEST, 'utf8') + `  - name: frontend-predicts\n    callers: [${IDS.stranger}]\n    paths: ["/v1/models/*:predict"]\n`;
    const t0 = Date.now();
    writeFileSync(manifest, edited);
    let status = 0;
    while (Date.now() - t0 < 1000) {
      status = (await call('stranger')).status;
      if (status === 200) break;
      await new Promise((r) => setTimeout(r, 25));
    }
    expect(status).toBe(200);
    expect(Date.now() - t0).toBeLessThan(1000);
  });

  it("joins one request's Envoy access-log line, its decision-log line and its trace id", async () => {
    const traceId = '0af7651916cd43dd8448eb211c80319c';
    const traceparent = `00-${traceId}-b7ad6b7169203331-01`;
    const res = await call('compromised', PREDICT, { traceparent });
    expect(res.status).toBe(403);
    const lines = (file: string) => readFileSync(file, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
    await expect.poll(() => lines(stack.accessLog).some((l) => l.traceparent === traceparent), { timeout: 3000 }).toBe(true);
    const access = lines(stack.accessLog).find((l) => l.traceparent === traceparent)!;
    expect(access).toMatchObject({ response_code: 403, infergate_reason: 'quarantined', infergate_caller: IDS.compromised, downstream_peer_uri_san: IDS.compromised });
    expect(String(access.request_id)).toMatch(/^[0-9a-f-]{36}$/);
    await expect.poll(() => lines(stack.decisionLog).some((l) => l.request_id === access.request_id), { timeout: 3000 }).toBe(true);
    const decision = lines(stack.decisionLog).find((l) => l.request_id === access.request_id)!;
    expect(decision).toMatchObject({ decision_id: access.infergate_decision_id, trace_id: traceId, reason: 'quarantined', caller: IDS.compromised });
  });

  it('logs each decision as a JSON line with the verified caller and reason', () => {
    const lines = readFileSync(stack.decisionLog, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.some((l) => l.caller === IDS.compromised && l.reason === 'quarantined' && l.result === 'deny')).toBe(true);
    expect(lines.some((l) => l.caller === IDS.gateway && l.rule === 'gateway-predicts' && l.result === 'allow')).toBe(true);
  });

  it('denies (fails closed) once the authorization server is gone', async () => {
    expect((await call('gateway')).status).toBe(200);
    await authz.stop();
    const before = upstream.requests.length;
    const res = await call('gateway');
    expect(res.status).toBe(403);
    expect(upstream.requests.length).toBe(before);
  });
});
