import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renderBootstrap } from '../../envoy/bootstrap.js';
import { httpCheck } from '../helpers/authz-client.js';
import { startAuthzProcess, type AuthzProcess } from '../helpers/authz-process.js';
import { startEnvoy, type EnvoyHandle } from '../helpers/envoy.js';
import { SEQ_HEADER, startLoad, until } from '../helpers/load.js';
import { requireBundle } from '../helpers/paths.js';
import { makePki, type Pki } from '../helpers/pki.js';
import { sampleValue, scrapeAuthz } from '../helpers/scrape.js';
import { startUpstream, type Upstream } from '../helpers/upstream.js';
import { GATEWAY, alive, decisionLines, logLines, reasonOf, separateClients, servingLine } from './workers-helpers.js';

const PREDICT = '/v1/models/worker-kill:predict';
const MANIFEST = `trustDomains: [cluster.local]
rules:
  - name: gateway-predicts
    callers: [${GATEWAY}]
    methods: [POST]
    paths: ["/v1/models/*:predict"]
`;
// Long, so that a check held at the stopped worker is ended by the kill, not by Envoy giving up.
const CHECK_TIMEOUT_MS = 8000;
// A check whose connection was cut is denied at once; this is far below CHECK_TIMEOUT_MS.
const DENY_WITHIN_MS = 2000;

describe('a worker of --workers 2 killed under load behind the real Envoy (failure_mode_allow false)', () => {
  let dir: string;
  let decisions: string;
  let pki: Pki;
  let upstream: Upstream;
  let authz: AuthzProcess;
  let envoy: EnvoyHandle;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'infergate-workers-envoy-'));
    const manifest = join(dir, 'manifest.yaml');
    decisions = join(dir, 'decisions.log');
    writeFileSync(manifest, MANIFEST);
    pki = makePki(join(dir, 'pki'), { gateway: GATEWAY });
    upstream = await startUpstream('http1');
    authz = await startAuthzProcess(['--workers', '2', '--bundle', requireBundle(), '--manifest', manifest, '--decision-log', decisions, '--log-level', 'info']);
    envoy = await startEnvoy(renderBootstrap({
      listenerPort: 0, tls: pki, extAuthz: { host: '127.0.0.1', port: authz.port, timeoutMs: CHECK_TIMEOUT_MS },
      upstream: { host: '127.0.0.1', port: upstream.port },
    }), { concurrency: 2 });
  });

  afterAll(async () => {
    await envoy?.stop();
    await authz?.stop();
    await upstream?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('denies the checks that were at the dead worker, lets none through, keeps serving on the other, and replaces it', async () => {
    const metrics = () => scrapeAuthz(authz.metricsPort);
    const [victim, other] = servingLine(authz.logs()).worker_pids as number[];
    const load = startLoad({
      port: envoy.listenerPort('ingress'), ca: pki.caCert, callers: [{ name: 'gateway', cert: pki.client('gateway') }], connections: 8, path: PREDICT,
      timeoutMs: CHECK_TIMEOUT_MS + 2000,
    });
    // Both workers deciding Envoy's checks first (Envoy's two threads each have a connection, handed out in turn).
    await until('checks answered by both workers', async () => {
      const m = await metrics();
      return sampleValue(m, 'infergate_worker_checks_total', { worker: '1' }) > 20 && sampleValue(m, 'infergate_worker_checks_total', { worker: '2' }) > 20;
    }, 15_000, 50);

    // Stopped, worker 1 holds the checks sent to it: they are in flight there when it dies.
    process.kill(victim!, 'SIGSTOP');
    const held = () => load.sent.filter((s) => s.doneAt === 0 && performance.now() - s.sentAt > 300);
    await until('checks held at the stopped worker', () => held().length >= 2, 5000);
    const inFlight = held();
    const killedAt = performance.now();
    process.kill(victim!, 'SIGKILL');
    await until('the held requests answered', () => inFlight.every((s) => s.doneAt !== 0), DENY_WITHIN_MS + 1000);

    // Not ready while a worker is missing, ready again once the replacement serves.
    await until('/readyz to report the missing worker', async () => (await fetch(`http://127.0.0.1:${authz.metricsPort}/readyz`)).status === 503, 2000, 10);
    await until('a replacement for worker 1', () => logLines(authz.logs(), 'worker serving').some((l) => l.worker === 1), 15_000);
    await until('/readyz', async () => (await fetch(`http://127.0.0.1:${authz.metricsPort}/readyz`)).status === 200, 5000);
    await until('allowed requests after the kill', () => load.sent.filter((s) => s.sentAt > killedAt && s.status === 200).length >= 50, 10_000);
    const sent = await load.stop();

    // The checks held at the dead worker failed closed, promptly (the cut connection, not Envoy's timeout).
    for (const s of inFlight) {
      expect(s.error).toBeNull();
      expect(s.status).toBe(403);
      expect(s.doneAt - killedAt).toBeLessThan(DENY_WITHIN_MS);
    }
    // Nothing reached the model server that the client was not told was allowed.
    const allowed = sent.filter((s) => s.status === 200).map((s) => String(s.seq)).sort();
    const reached = upstream.requests.filter((r) => r.path === PREDICT).map((r) => String(r.headers[SEQ_HEADER])).sort();
    expect(reached).toEqual(allowed);
    for (const s of inFlight) expect(reached).not.toContain(String(s.seq));
    // Everything else was answered: allowed by the surviving worker, or denied while Envoy's connection was being replaced.
    for (const s of sent) expect([200, 403]).toContain(s.status);

    const exited = logLines(authz.logs(), 'worker exited unexpectedly; its connections were cut; starting a new one');
    expect(exited).toHaveLength(1);
    expect(exited[0]).toMatchObject({ worker: 1, pid: victim, signal: 'SIGKILL' });
    const replacement = logLines(authz.logs(), 'worker serving').find((l) => l.worker === 1)!;
    expect(replacement.pid).not.toBe(victim);
    expect(alive(other!)).toBe(true);
    const m = await metrics();
    expect(sampleValue(m, 'infergate_worker_restarts_total')).toBe(1);
    expect(sampleValue(m, 'infergate_workers_serving')).toBe(2);

    // The replacement decides checks of its own (new connections are handed to it in turn).
    const clients = separateClients(`127.0.0.1:${authz.port}`, 4);
    const r = await Promise.all(clients.map((c, i) => c.check(httpCheck(GATEWAY, 'POST', PREDICT, undefined, { 'x-request-id': `after-${i}` }))));
    for (const c of clients) c.close();
    expect(r.map(reasonOf)).toEqual(r.map(() => 'allowed'));
    await until('decisions from the replacement', () => decisionLines(decisions).some((l) => String(l.request_id).startsWith('after-') && l.worker === 1), 3000);
    console.log(`worker kill: ${inFlight.length} checks held at the killed worker, all denied within ${Math.max(...inFlight.map((s) => s.doneAt - killedAt)).toFixed(0)} ms; ${allowed.length} allowed in all; replacement pid ${String(replacement.pid)}`);
  });
});
