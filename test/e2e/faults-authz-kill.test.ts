import { performance } from 'node:perf_hooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuthzProcess } from '../helpers/authz-process.js';
import { startE2eStack, type E2eStack } from '../helpers/e2e-stack.js';
import { SENT_HEADER, SEQ_HEADER, startLoad, until } from '../helpers/load.js';
import { mtlsRequest } from '../helpers/mtls-client.js';

const IDS = { gateway: 'spiffe://cluster.local/ns/gateway/sa/api-gateway' };
const PREDICT = '/v1/models/kill:predict';
const MANIFEST = `trustDomains: [cluster.local]
rules:
  - name: gateway-predicts
    callers: [${IDS.gateway}]
    methods: [POST]
    paths: ["/v1/models/*:predict"]
`;
// Envoy denies a failed Check at once (connection refused or reset); a deny
// slower than this would be a hang in disguise.
const DENY_WITHIN_MS = 2000;
// From the restarted server logging "serving" to an allowed request reaching the model.
const RESUME_WITHIN_MS = 3000;

describe('the authorization server SIGKILLed under sustained load (real Envoy, failure_mode_allow false)', () => {
  let stack: E2eStack;
  let restarted: AuthzProcess | null = null;

  beforeAll(async () => {
    stack = await startE2eStack({ name: 'faults-kill', manifest: MANIFEST, clients: IDS });
  });

  afterAll(async () => {
    await restarted?.stop();
    await stack?.stop();
  });

  it('lets no request sent after the kill reach the model server, answers each with a deny rather than a hang, and resumes once restarted on its port', async () => {
    const { upstream, pki } = stack;
    const sentAtUpstream = (): number[] => upstream.requests.filter((r) => r.path === PREDICT).map((r) => Number(r.headers[SENT_HEADER]));
    const load = startLoad({
      port: stack.port, ca: pki.caCert, callers: [{ name: 'gateway', cert: pki.client('gateway') }], connections: 8, path: PREDICT,
      timeoutMs: 5000,
    });
    // Steady state first: allowed traffic flowing on every connection.
    await until('allowed traffic on all 8 connections', () => new Set(load.sent.filter((s) => s.status === 200).map((s) => s.conn)).size === 8 && sentAtUpstream().length >= 100, 15_000);

    const killAt = performance.now();
    const inFlightAtKill = load.inFlight();
    stack.authz.kill('SIGKILL');
    const exit = await stack.authz.exited();
    // The process is reaped: from here on nothing can authorise a request.
    const reapedAt = performance.now();
    const reachedByReap = sentAtUpstream().length;
    expect(exit.signal).toBe('SIGKILL');

    // Keep the load going against the dead server for a while.
    await until('denials after the kill', () => load.sent.filter((s) => s.sentAt > reapedAt && s.doneAt !== 0).length >= 200 && performance.now() - reapedAt > 1000, 15_000);
    const sent = await load.stop();

    const afterKill = sent.filter((s) => s.sentAt > reapedAt);
    const caught = sent.filter((s) => s.sentAt <= killAt && s.doneAt > killAt).map((s) => s.status);
    const statuses = new Map<string, number>();
    for (const s of afterKill) statuses.set(s.error ?? String(s.status), (statuses.get(s.error ?? String(s.status)) ?? 0) + 1);
    // Counted where it matters, at the model server: nothing sent after the kill got there.
    const leaked = sentAtUpstream().filter((t) => t > reapedAt);
    // Authorised before the kill, still on their way to the model server when it was confirmed.
    const lateButAuthorised = sentAtUpstream().length - reachedByReap;
    const slowest = Math.max(...afterKill.map((s) => s.doneAt - s.sentAt));
    console.log(`kill: ${inFlightAtKill} in flight at the kill (answered ${caught.join(',')}); after it ${afterKill.length} requests, outcomes ${JSON.stringify(Object.fromEntries(statuses))}, slowest ${slowest.toFixed(0)} ms; leaked ${leaked.length}`);
    expect(leaked).toEqual([]);
    // Clients got an answer, and it was a denial: no transport errors, no timeouts.
    for (const s of afterKill) {
      expect(s.error).toBeNull();
      expect(s.status === 403 || s.status >= 500).toBe(true);
      expect(s.doneAt - s.sentAt).toBeLessThan(DENY_WITHIN_MS);
    }
    // And the upstream saw exactly the requests the clients were told succeeded, before and around the kill.
    const okSeqs = sent.filter((s) => s.status === 200).map((s) => String(s.seq)).sort();
    const upstreamSeqs = upstream.requests.filter((r) => r.path === PREDICT).map((r) => String(r.headers[SEQ_HEADER])).sort();
    expect(upstreamSeqs).toEqual(okSeqs);
    console.log(`kill: ${okSeqs.length} allowed in all; ${lateButAuthorised} authorised before the kill reached the model server after it`);

    // Back on the same port: Envoy's cluster points there, nothing else changes.
    const restartAt = performance.now();
    restarted = await stack.authz.restart();
    const servingAt = performance.now();
    expect(restarted.port).toBe(stack.authz.port);
    const before = upstream.requests.length;
    const resumedIn = await until('an allowed request to reach the model server again', async () => {
      const r = await mtlsRequest(stack.port, pki.caCert, pki.client('gateway'), { method: 'POST', path: PREDICT, body: '{}' });
      return r.status === 200;
    }, RESUME_WITHIN_MS, 25);
    expect(upstream.requests.length).toBeGreaterThan(before);
    console.log(`kill: restart took ${(servingAt - restartAt).toFixed(0)} ms to serve, first allowed request ${resumedIn.toFixed(0)} ms after that`);
    // Steady again: a short run over keep-alive connections is all allowed.
    const again = await startLoad({
      port: stack.port, ca: pki.caCert, callers: [{ name: 'gateway', cert: pki.client('gateway') }], connections: 4, path: PREDICT, maxRequests: 100,
    }).done();
    expect(again.map((s) => s.status)).toEqual(again.map(() => 200));
  });
});
