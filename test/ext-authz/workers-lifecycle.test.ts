import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAuthzProcess, type AuthzProcess } from '../helpers/authz-process.js';
import { httpCheck } from '../helpers/authz-client.js';
import { EXAMPLE_MANIFEST, requireBundle } from '../helpers/paths.js';
import { scrapeAuthz } from '../helpers/scrape.js';
import { GATEWAY, PREDICT, alive, childPids, decisionLines, logLines, reasonOf, separateClients, servingLine } from './workers-helpers.js';

describe('SIGTERM to a --workers 2 server under load', () => {
  let dir: string;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'infergate-workers-drain-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('answers every check a worker took, logs every answer, stops every worker, and exits 0', async () => {
    const decisions = join(dir, 'decisions.log');
    const authz = await startAuthzProcess(['--workers', '2', '--bundle', requireBundle(), '--manifest', EXAMPLE_MANIFEST, '--decision-log', decisions, '--log-level', 'info']);
    const pids = servingLine(authz.logs()).worker_pids as number[];
    const clients = separateClients(`127.0.0.1:${authz.port}`, 4);
    interface Call { id: string; ok: boolean; code: number | null; doneAt: number }
    const calls: Call[] = [];
    let n = 0;
    let sending = true;
    // 16 checks in flight on each connection, each replaced as soon as it is answered.
    const loops = clients.flatMap((c) => Array.from({ length: 16 }, async () => {
      while (sending) {
        const id = `drain-${n++}`;
        try {
          const res = await c.check(httpCheck(GATEWAY, 'POST', PREDICT, undefined, { 'x-request-id': id }));
          calls.push({ id, ok: reasonOf(res) === 'allowed', code: 0, doneAt: performance.now() });
        } catch (err) {
          calls.push({ id, ok: false, code: (err as { code?: number }).code ?? null, doneAt: performance.now() });
          // The server is going away; a client would back off too.
          await new Promise((r) => setTimeout(r, 20));
        }
      }
    }));
    await expect.poll(() => calls.length, { timeout: 5000 }).toBeGreaterThan(500);

    const signalledAt = performance.now();
    authz.kill('SIGTERM');
    const exit = await authz.exited();
    sending = false;
    await Promise.all(loops);
    for (const c of clients) c.close();

    expect(exit).toEqual({ code: 0, signal: null });
    expect(pids.filter(alive)).toEqual([]);
    expect(logLines(authz.logs(), 'shutting down')).toHaveLength(1);
    const answered = calls.filter((c) => c.ok).map((c) => c.id).sort();
    const logged = decisionLines(decisions).map((l) => String(l.request_id)).filter((id) => id.startsWith('drain-')).sort();
    // Every check a worker decided was answered, and every answer is in the decision log, written out before the exit.
    expect(logged).toEqual(answered);
    // Checks in flight when the signal came were answered, not cut off.
    const answeredAfterSignal = calls.filter((c) => c.ok && c.doneAt > signalledAt).length;
    console.log(`drain: ${answered.length} answered, ${answeredAfterSignal} of them after SIGTERM; ${calls.length - answered.length} refused once the workers stopped listening`);
    expect(answeredAfterSignal).toBeGreaterThan(0);
    // The rest were turned away before a worker took them (the channel then had no server), never failed mid-check.
    expect(new Set(calls.filter((c) => !c.ok).map((c) => c.code))).toEqual(new Set(calls.some((c) => !c.ok) ? [14] : []));
  });
});

describe('--workers 1', () => {
  let authz: AuthzProcess;
  let dir: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'infergate-workers-one-'));
    authz = await startAuthzProcess(['--workers', '1', '--bundle', requireBundle(), '--manifest', EXAMPLE_MANIFEST, '--decision-log', join(dir, 'decisions.log')]);
  });
  afterAll(async () => {
    await authz?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('is one process, as before --workers existed: no children, no worker fields, no worker metrics', async () => {
    expect(childPids(authz.pid)).toEqual([]);
    const serving = servingLine(authz.logs());
    expect(Object.keys(serving).sort()).toEqual(['cache', 'component', 'dryRun', 'grpc', 'level', 'metrics', 'msg', 'socket', 'time', 'tracing']);
    const [client] = separateClients(`127.0.0.1:${authz.port}`, 1);
    expect(reasonOf(await client!.check(httpCheck(GATEWAY, 'POST', PREDICT, undefined, { 'x-request-id': 'one-1' })))).toBe('allowed');
    client!.close();
    await expect.poll(() => decisionLines(join(dir, 'decisions.log')).length, { timeout: 3000 }).toBe(1);
    expect(decisionLines(join(dir, 'decisions.log'))[0]).not.toHaveProperty('worker');
    const names = new Set((await scrapeAuthz(authz.metricsPort)).map((s) => s.name));
    expect(names.has('infergate_decisions_total')).toBe(true);
    expect([...names].filter((n) => n.includes('worker'))).toEqual([]);
  });
});
