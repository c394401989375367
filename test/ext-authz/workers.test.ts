import { copyFileSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAuthzProcess, type AuthzProcess } from '../helpers/authz-process.js';
import { httpCheck, type AuthzClient } from '../helpers/authz-client.js';
import { EXAMPLE_MANIFEST, requireBundle } from '../helpers/paths.js';
import { sampleValue, scrapeAuthz, type Sample } from '../helpers/scrape.js';
import { GATEWAY, PREDICT, childPids, decisionLines, logLines, reasonOf, separateClients, servingLine } from './workers-helpers.js';

const WORKERS = 2;
// Twice the workers: the primary hands connections to the workers in turn, so each gets two.
const CONNECTIONS = 4;

describe('--workers 2: two evaluation processes behind one address (the built CLI as its own process)', () => {
  let dir: string;
  let manifest: string;
  let decisions: string;
  let authz: AuthzProcess;
  let clients: AuthzClient[];
  /** Checks this file has sent and that were allowed, so the aggregated counters can be held to it. */
  let allowedSent = 0;
  const metrics = (): Promise<Sample[]> => scrapeAuthz(authz.metricsPort);
  /** The same request on every connection: what each worker decides. */
  const everyWorker = async (principal: string, path = PREDICT): Promise<string[]> => {
    const r = await Promise.all(clients.map((c) => c.check(httpCheck(principal, 'POST', path))));
    allowedSent += r.filter((x) => reasonOf(x) === 'allowed').length;
    return r.map(reasonOf);
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'infergate-workers-'));
    manifest = join(dir, 'manifest.yaml');
    decisions = join(dir, 'decisions.log');
    copyFileSync(EXAMPLE_MANIFEST, manifest);
    authz = await startAuthzProcess([
      '--workers', String(WORKERS), '--bundle', requireBundle(), '--manifest', manifest, '--decision-log', decisions,
      '--socket', join(dir, 'authz.sock'), '--log-level', 'info',
    ]);
    clients = separateClients(`127.0.0.1:${authz.port}`, CONNECTIONS);
  });

  afterAll(async () => {
    for (const c of clients ?? []) c.close();
    await authz?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('starts the workers and says so once, when all of them serve', () => {
    const lines = authz.logs().split('\n').filter((l) => l.includes('"infergate-authz serving"'));
    expect(lines).toHaveLength(1);
    const serving = servingLine(authz.logs());
    expect(serving).toMatchObject({ grpc: `127.0.0.1:${authz.port}`, metrics: `127.0.0.1:${authz.metricsPort}`, workers: WORKERS });
    const pids = serving.worker_pids as number[];
    expect(pids).toHaveLength(WORKERS);
    expect(childPids(authz.pid).sort()).toEqual([...pids].sort());
  });

  it('has every worker answer, and each decision log line names the worker that decided', async () => {
    const perConnection = 25;
    await Promise.all(clients.map(async (c, conn) => {
      for (let i = 0; i < perConnection; i++) {
        const res = await c.check(httpCheck(GATEWAY, 'POST', PREDICT, undefined, { 'x-request-id': `spread-${conn}-${i}` }));
        expect(reasonOf(res)).toBe('allowed');
        allowedSent++;
      }
    }));
    const ours = (): Array<Record<string, unknown>> => decisionLines(decisions).filter((l) => String(l.request_id).startsWith('spread-'));
    await expect.poll(() => ours().length, { timeout: 3000 }).toBe(CONNECTIONS * perConnection);
    const byWorker = new Map<unknown, number>();
    for (const l of ours()) byWorker.set(l.worker, (byWorker.get(l.worker) ?? 0) + 1);
    // Two connections each, so an even split.
    expect(Object.fromEntries(byWorker)).toEqual({ 1: 2 * perConnection, 2: 2 * perConnection });
  });

  it('serves one /metrics that sums the workers, and probes that speak for all of them', async () => {
    const m = await metrics();
    const perWorker = [1, 2].map((w) => sampleValue(m, 'infergate_worker_checks_total', { worker: String(w) }));
    expect(perWorker.every((n) => n > 0)).toBe(true);
    // Every check so far was an allowed one: the sum over workers, once.
    expect(sampleValue(m, 'infergate_decisions_total', { result: 'allow', reason: 'allowed' })).toBe(allowedSent);
    expect(perWorker[0]! + perWorker[1]!).toBe(allowedSent);
    expect(sampleValue(m, 'infergate_check_duration_seconds_count')).toBe(allowedSent);
    expect(sampleValue(m, 'infergate_decision_cache_misses_total') + sampleValue(m, 'infergate_decision_cache_hits_total')).toBe(allowedSent);
    // Each worker has its own cache, so the one distinct request is an entry in each.
    expect(sampleValue(m, 'infergate_decision_cache_entries')).toBe(WORKERS);
    expect(sampleValue(m, 'infergate_workers_serving')).toBe(WORKERS);
    // The policy is the primary's alone: one revision series, one initial load.
    expect(m.filter((s) => s.name === 'infergate_policy_revision_info')).toHaveLength(1);
    expect(sampleValue(m, 'infergate_policy_reloads_total', { result: 'success' })).toBe(1);
    // Process metrics add up over the three processes.
    expect(sampleValue(m, 'infergate_process_resident_memory_bytes')).toBeGreaterThan(3 * 20 * 1024 * 1024);
    expect((await fetch(`http://127.0.0.1:${authz.metricsPort}/readyz`)).status).toBe(200);
    expect((await fetch(`http://127.0.0.1:${authz.metricsPort}/healthz`)).status).toBe(200);
  });

  it('serves the same decisions on its unix socket, from every worker', async () => {
    const socketClients = separateClients(`unix:${join(dir, 'authz.sock')}`, CONNECTIONS);
    try {
      const r = await Promise.all(socketClients.map((c, i) => c.check(httpCheck(GATEWAY, 'POST', PREDICT, undefined, { 'x-request-id': `sock-${i}` }))));
      expect(r.map(reasonOf)).toEqual(r.map(() => 'allowed'));
      allowedSent += r.length;
      await expect.poll(() => new Set(decisionLines(decisions).filter((l) => String(l.request_id).startsWith('sock-')).map((l) => l.worker)).size, { timeout: 3000 })
        .toBe(WORKERS);
    } finally {
      for (const c of socketClients) c.close();
    }
  });

  it('puts a manifest edit in force in every worker before it says so, validated, logged and counted once', async () => {
    const m0 = await metrics();
    const before = m0.find((s) => s.name === 'infergate_policy_revision_info')!.labels.revision!;
    expect(await everyWorker(GATEWAY)).toEqual(clients.map(() => 'allowed'));
    const quarantineGateway = readFileSync(EXAMPLE_MANIFEST, 'utf8').replace(
      '  - spiffe://cluster.local/ns/ml/sa/compromised',
      `  - spiffe://cluster.local/ns/ml/sa/compromised\n  - ${GATEWAY}`,
    );
    writeFileSync(`${manifest}.tmp`, quarantineGateway);
    renameSync(`${manifest}.tmp`, manifest);
    await expect.poll(() => logLines(authz.logs(), 'policy in force').filter((l) => l.previous === before).length, { timeout: 5000 }).toBe(1);
    const inForce = logLines(authz.logs(), 'policy in force').find((l) => l.previous === before)!;
    // Logged once every worker has switched: from then on no worker decides by the old revision.
    expect(inForce).toMatchObject({ workers: WORKERS });
    console.log(`workers: reload ${before} → ${String(inForce.revision)}: swap window ${String(inForce.swap_window_us)} µs`);
    expect(await everyWorker(GATEWAY)).toEqual(clients.map(() => 'quarantined'));
    const m = await metrics();
    expect(sampleValue(m, 'infergate_policy_revision_info', { revision: String(inForce.revision) })).toBe(1);
    expect(m.filter((s) => s.name === 'infergate_policy_revision_info')).toHaveLength(1);
    expect(sampleValue(m, 'infergate_policy_reloads_total', { result: 'success' })).toBe(2);
    expect(sampleValue(m, 'infergate_policy_swap_window_seconds')).toBeGreaterThanOrEqual(0);
    expect((await fetch(`http://127.0.0.1:${authz.metricsPort}/readyz`)).status).toBe(200);
  });

  it('rejects a bad edit once for all workers, and every worker keeps the last good policy', async () => {
    const good = (await metrics()).find((s) => s.name === 'infergate_policy_revision_info')!.labels.revision!;
    writeFileSync(`${manifest}.tmp`, 'trustDomains: [cluster.local]\nrules:\n  - name: x\n    calers: []\n');
    renameSync(`${manifest}.tmp`, manifest);
    await expect.poll(async () => sampleValue(await metrics(), 'infergate_policy_reload_errors_total', { source: 'manifest' }), { timeout: 5000 }).toBe(1);
    // Past the 1 s stat poll, which sees the same edit as the directory watch did.
    await new Promise((r) => setTimeout(r, 1500));
    const m = await metrics();
    expect(sampleValue(m, 'infergate_policy_reload_errors_total', { source: 'manifest' })).toBe(1);
    expect(sampleValue(m, 'infergate_policy_reloads_total', { result: 'error' })).toBe(1);
    expect(sampleValue(m, 'infergate_policy_last_reload_success')).toBe(0);
    expect(sampleValue(m, 'infergate_policy_revision_info', { revision: good })).toBe(1);
    const rejected = logLines(authz.logs(), 'policy reload rejected; keeping the last good policy');
    expect(rejected).toHaveLength(1);
    expect(rejected[0]).toMatchObject({ source: 'manifest', revision: good });
    expect(String(rejected[0]!.error)).toContain('calers');
    expect(await everyWorker(GATEWAY)).toEqual(clients.map(() => 'quarantined'));
    expect((await fetch(`http://127.0.0.1:${authz.metricsPort}/readyz`)).status).toBe(200);
  });
});
