import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/paths.js';
import { builtFilter } from '../filters/built.js';

/**
 * Smoke test of the filters benchmark (bench/filters-bench.ts), so the script
 * `make bench` runs cannot rot unnoticed: one 1-second round of every
 * configuration through the real Envoy and wrk. It asserts the table's shape
 * and that every configuration served requests, never the figures (timing
 * belongs in the benchmark, not in a test).
 */
describe('bench/filters-bench (smoke: one short round)', () => {
  it('runs every configuration through Envoy and prints the table and the target lines', () => {
    try {
      execFileSync('sh', ['-c', 'command -v wrk'], { stdio: 'ignore' });
    } catch {
      throw new Error('wrk is not installed: apt-get install wrk (scripts/setup.sh does this when run as root)');
    }
    builtFilter('guard'); // builds the modules if stale
    const out = execFileSync('node', [`${ROOT}dist/bench/filters-bench.js`, '--duration', '1', '--warmup', '0', '--rounds', '1', '--connections', '4'],
      { encoding: 'utf8', timeout: 60_000 });
    const rows = out.split('\n').filter((l) => l.startsWith('| ') && !l.startsWith('| configuration'));
    expect(rows.map((r) => r.split('|')[1]!.trim())).toEqual([
      'no filters', 'wasm rate-limit + payload-limit (two filters)', 'wasm guard (both checks, one filter)',
      'wasm guard, build without response-body callback', 'wasm guard, request-side build (no budget headers)',
      'native local_ratelimit per caller + buffer', 'native local_ratelimit, one global bucket + buffer',
    ]);
    for (const r of rows) expect(Number(r.split('|')[2])).toBeGreaterThan(0); // req/s
    expect(out).toMatch(/^ {2}vs no filters: throughput [\d.]+%/m);
    expect(out).toMatch(/^ {2}vs native local_ratelimit per caller \+ buffer: throughput [\d.]+%/m);
  }, 90_000);

  it('runs head to head: an A/A control and each configuration against no filters, two Envoys at a time', () => {
    const out = execFileSync('node', [`${ROOT}dist/bench/filters-bench.js`, '--head-to-head', '--only', 'guard', '--duration', '1', '--warmup', '0', '--rounds', '1', '--connections', '4'],
      { encoding: 'utf8', timeout: 60_000 });
    const rows = out.split('\n').filter((l) => l.startsWith('| ') && !l.startsWith('| configuration')).map((l) => l.split('|').map((c) => c.trim()));
    expect(rows.map((r) => [r[1], r[2]])).toEqual([['no filters (A/A control)', 'no filters'], ['wasm guard (both checks, one filter)', 'no filters']]);
    for (const r of rows) expect(Number(r[3])).toBeGreaterThan(0); // a throughput ratio
    expect(out).toMatch(/^wasm guard \(both checks, one filter\): [\d.]+% of no-filter throughput/m);
  }, 90_000);
});
