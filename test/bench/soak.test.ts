import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/paths.js';
import { builtFilter } from '../filters/built.js';

/**
 * Smoke test of the soak benchmark (bench/soak.ts), so the script cannot rot
 * unnoticed: both phases for 6 seconds each, through the real server process,
 * the real Envoy with ext_authz and the guard filter, and the open-loop load
 * generator. It asserts that every part did its job (the load was offered at
 * the fixed rate and every request accounted for, the answers were the
 * expected ones, memory was sampled, the tables and verdict lines printed and
 * the JSON written), never the figures: 6 seconds say nothing about a soak.
 *
 * A machine busy with other tests can make Envoy's ext_authz call time out
 * (500 ms), which Envoy answers with 403, failing closed; the benchmark counts
 * those as errors and exits 1. The test accepts such errors only when Envoy's
 * own ext_authz.error counter accounts for every one, and accepts no wrong
 * decision at all.
 */
describe('bench/soak (smoke: 6 s per phase)', () => {
  it('drives both phases at a fixed rate, samples memory, and prints tables and verdicts', async () => {
    builtFilter('guard'); // builds the modules if stale
    const dir = mkdtempSync(join(tmpdir(), 'infergate-soak-test-'));
    try {
      const json = join(dir, 'soak.json');
      const run = await promisify(execFile)('node', [`${ROOT}dist/bench/soak.js`, '--minutes', '0.1', '--sample-seconds', '1',
        '--bucket-seconds', '2', '--warmup-seconds', '2', '--rate', '200', '--envoy-rate', '100', '--json', json], { encoding: 'utf8', timeout: 60_000 })
        .then((r) => ({ ...r, code: 0 }))
        .catch((e: { stdout?: string; stderr?: string; code?: number }) => ({ stdout: e.stdout ?? '', stderr: e.stderr ?? '', code: e.code ?? -1 }));
      const { stdout } = run;
      expect(existsSync(json), `no JSON written; stderr:\n${run.stderr}`).toBe(true);

      for (const phase of ['server', 'envoy']) expect(stdout).toMatch(new RegExp(`^== ${phase} phase: `, 'm'));
      expect(stdout).toMatch(/^ {2}infergate-authz RSS: (memory flat: (yes|NO)|NOT ENOUGH SAMPLES) — /m);
      expect(stdout).toMatch(/^ {2}Envoy RSS: memory flat: (yes|NO) — .*slope -?[\d.]+ MiB\/min/m);
      expect(stdout).toMatch(/^ {2}latency steady: (yes|NO) — p99 [\d.]+ ms in minute 3 vs [\d.]+ ms in minute 2/m);
      expect(stdout).toMatch(/decision log: written to a file, not rotated; it grew to [\d.]+ MB/);

      const report = JSON.parse(readFileSync(json, 'utf8')) as { results: Array<{
        spec: { name: string }; errors: number; errorKinds: Record<string, number>; counters: Record<string, number>;
        samples: Array<{ t: number; rss: Record<string, number>; extra: Record<string, number> }>;
        buckets: Array<{ client: { sent: number; answered: number; ok: number; rejected: Record<string, number> } }>;
      }> };
      const [server, envoy] = report.results;
      expect(report.results.map((r) => r.spec.name)).toEqual(['server', 'envoy']);
      // Exit code 1 exactly when something was answered wrongly or not at all.
      expect(run.code, run.stderr).toBe(server!.errors + envoy!.errors > 0 ? 1 : 0);
      // The server phase: every decision as the example manifest says, none lost.
      expect(server!.errorKinds).toEqual({});
      // The Envoy phase: only 403s to allowed callers, each one an ext_authz call Envoy gave up on (fail closed).
      for (const kind of Object.keys(envoy!.errorKinds)) expect(kind).toMatch(/^HTTP 403 for (api-gateway|scorer-a|scorer-b|greedy)( \(new path\))?$/);
      expect(envoy!.errors).toBeLessThanOrEqual(envoy!.counters['envoy ext_authz.error']!);
      for (const r of [server!, envoy!]) {
        expect(r.buckets).toHaveLength(3);
        // t = 0, 1, ..., 6 s: one sample per second, each with a real RSS.
        expect(r.samples.map((s) => s.t)).toEqual([0, 1, 2, 3, 4, 5, 6]);
        for (const s of r.samples) for (const v of Object.values(s.rss)) expect(v).toBeGreaterThan(10 * 1024 * 1024);
      }
      const total = (r: typeof server, k: 'sent' | 'answered' | 'ok') => r!.buckets.reduce((n, b) => n + b.client[k], 0);
      // Open loop at a fixed rate: 6 s x 200/s and 6 s x 100/s were sent, and every one accounted for.
      expect(total(server, 'sent')).toBe(1200);
      expect(total(server, 'answered')).toBe(1200);
      expect(total(envoy, 'sent')).toBe(600);
      expect(total(envoy, 'answered') + envoy!.errors).toBe(600);
      // The mix reached every path: allows and denies from the server; 2xx, 429 (greedy caller) and 403 (no rule) through Envoy.
      const rejected = (r: typeof server, k: string) => r!.buckets.reduce((n, b) => n + (b.client.rejected[k] ?? 0), 0);
      expect(rejected(server, 'deny')).toBeGreaterThan(0);
      expect(total(server, 'ok')).toBe(1200);
      expect(total(envoy, 'ok')).toBeGreaterThan(0); // not a figure: how many pass depends on how busy the machine is
      expect(rejected(envoy, '429')).toBeGreaterThan(0);
      expect(rejected(envoy, '403')).toBeGreaterThan(0);
      // The server's cache filled from the distinct requests; Envoy's allocator was read.
      expect(server!.samples.at(-1)!.extra.cacheEntries).toBeGreaterThan(100);
      expect(envoy!.samples.at(-1)!.extra.envoyAllocated).toBeGreaterThan(1024 * 1024);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 90_000);
});
