import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/paths.js';

/**
 * Smoke test of the global quotas benchmark (bench/global-quotas.sh), so what
 * `make bench` runs cannot rot: one 1-second round through the real Envoy,
 * ratelimit service and Redis. It asserts the table's shape and that both
 * listeners served and the service was really called, never the figures.
 */
describe('bench/global-quotas (smoke: one short round)', () => {
  it('measures guard alone and guard plus the global check, and prints what the check adds', () => {
    const out = execFileSync('bash', [`${ROOT}bench/global-quotas.sh`, '--duration', '1', '--warmup', '0', '--rounds', '1'], { encoding: 'utf8', timeout: 90_000 });
    const rows = out.split('\n').filter((l) => l.startsWith('| guard')).map((l) => l.split('|').map((c) => c.trim()));
    expect(rows.map((r) => r[1])).toEqual(['guard filter only', 'guard + global check (ratelimit filter → service → Redis)']);
    for (const r of rows) expect(Number(r[4])).toBeGreaterThan(0); // saturated req/s
    // The service and Redis did work for the global listener: the check really ran.
    expect(Number(rows[1]![8])).toBeGreaterThan(0);
    expect(out).toMatch(/^Added by the global check: p50 [+-]\d+ µs, p99 [+-]\d+ µs .*throughput [\d.]+× /m);
  }, 120_000);
});
