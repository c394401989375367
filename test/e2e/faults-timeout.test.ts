import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startE2eStack, type E2eStack } from '../helpers/e2e-stack.js';
import { SEQ_HEADER, startLoad, until } from '../helpers/load.js';
import { mtlsRequest } from '../helpers/mtls-client.js';

const TD = 'spiffe://cluster.local/ns/timeout/sa/';
const IDS = { allowed: `${TD}allowed`, stranger: `${TD}stranger` };
const PREDICT = '/v1/models/slow:predict';
const MANIFEST = `trustDomains: [cluster.local]
rules:
  - name: allowed-predicts
    callers: [${IDS.allowed}]
    methods: [POST]
    paths: ["/v1/models/*:predict"]
`;
// renderBootstrap's ext_authz timeout (the e2e stack does not override it).
const EXT_AUTHZ_TIMEOUT_MS = 500;
// The deny must come from that timeout: not much sooner (that would be some
// other failure), and not much later (a hang with a timer). The upper margin
// is for a loaded 2-core machine.
const DENY_AFTER_AT_LEAST_MS = EXT_AUTHZ_TIMEOUT_MS * 0.9;
const DENY_WITHIN_MS = EXT_AUTHZ_TIMEOUT_MS + 1500;

/**
 * The server's processes: with --workers (the default on a machine with more
 * than one CPU), the primary and each worker. All must stall: a stalled
 * primary alone leaves the workers deciding.
 */
function serverPids(pid: number): number[] {
  const workers = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter((p) => p !== '').map(Number);
  return [pid, ...workers];
}

describe('an authorization server slower than the ext_authz timeout (frozen with SIGSTOP)', () => {
  let stack: E2eStack;

  beforeAll(async () => {
    stack = await startE2eStack({ name: 'faults-timeout', manifest: MANIFEST, clients: IDS });
  });

  afterAll(async () => {
    stack?.authz.kill('SIGCONT');
    await stack?.stop();
  });

  it('gets each request a prompt deny at about the timeout, lets nothing through, and decides again once it runs', async () => {
    const { upstream, pki, authz } = stack;
    const call = (who: keyof typeof IDS) => mtlsRequest(stack.port, pki.caCert, pki.client(who), { method: 'POST', path: PREDICT, body: '{}' });
    expect((await call('allowed')).status).toBe(200);

    // SIGSTOP: the process keeps its sockets (the kernel still accepts and
    // acknowledges) but never answers, exactly like a server stuck in a long pause.
    const pids = serverPids(authz.pid);
    for (const p of pids) process.kill(p, 'SIGSTOP');
    const frozenAt = performance.now();
    let sent;
    try {
      sent = await startLoad({
        port: stack.port, ca: pki.caCert, callers: [{ name: 'allowed', cert: pki.client('allowed') }], connections: 6, path: PREDICT,
        maxRequests: 24, timeoutMs: 10_000,
      }).done();
    } finally {
      for (const p of pids) process.kill(p, 'SIGCONT');
    }
    const resumedAt = performance.now();
    const latencies = sent.map((s) => s.doneAt - s.sentAt);
    console.log(`timeout: ${pids.length} server processes frozen; ${sent.length} requests while frozen (${(resumedAt - frozenAt).toFixed(0)} ms), statuses ${[...new Set(sent.map((s) => s.status))].join(',')}, deny latency ${Math.min(...latencies).toFixed(0)}-${Math.max(...latencies).toFixed(0)} ms`);
    for (const s of sent) {
      expect(s.error).toBeNull();
      expect(s.status).toBe(403);
      // Envoy's own deny on a failed Check, not a decision of the server (which would name its reason).
      expect(s.headers['x-infergate-reason']).toBeUndefined();
      expect(s.doneAt - s.sentAt).toBeGreaterThanOrEqual(DENY_AFTER_AT_LEAST_MS);
      expect(s.doneAt - s.sentAt).toBeLessThan(DENY_WITHIN_MS);
    }
    const frozenSeqs = new Set(sent.map((s) => String(s.seq)));
    expect(upstream.requests.filter((r) => r.path === PREDICT && frozenSeqs.has(String(r.headers[SEQ_HEADER])))).toEqual([]);

    // Running again, it decides again: allowed through, a stranger denied with the server's own reason.
    const back = await until('the server to allow again after SIGCONT', async () => (await call('allowed')).status === 200, 5000, 25);
    const denied = await call('stranger');
    expect(denied.status).toBe(403);
    expect(denied.headers['x-infergate-reason']).toBe('no_matching_rule');
    console.log(`timeout: allowing again ${back.toFixed(0)} ms after SIGCONT`);
  });
});
