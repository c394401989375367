import { execFileSync, spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { ROOT, TOOLS_BIN, requireTool } from '../helpers/paths.js';

/**
 * Smoke test of the ext-authz benchmark (bench/authz-bench.ts), so the script
 * `make bench` runs cannot rot unnoticed: one short round against the bare
 * baseline and infergate, with ghz for real. It asserts the tables' shape,
 * that every scenario answered, and what a user without an OPA-Envoy binary
 * is told; never the figures (timing belongs in the benchmark, not a test).
 */
const BENCH = `${ROOT}dist/bench/authz-bench.js`;
const ghz = () => requireTool(`${TOOLS_BIN}/ghz`, 'run `make setup` (go install github.com/bojand/ghz/cmd/ghz)');

describe('bench/authz-bench (smoke: one short round)', () => {
  it('measures the baseline and infergate, and says where an OPA-Envoy binary comes from', () => {
    const out = execFileSync(process.execPath, [BENCH, '--ghz', ghz(), '--only', 'baseline,hit,miss-nocache', '--rounds', '1', '--duration', '1', '--warmup', '0', '--rate-duration', '1', '--rate', '200'],
      { encoding: 'utf8', timeout: 90_000 });
    expect(out).toContain('OPA-Envoy rows left out: pass --opa-envoy PATH');
    expect(out).toContain('opa-envoy-plugin/releases');
    const saturation = out.slice(out.indexOf('Saturation:'), out.indexOf('Fixed rate:'));
    const rows = saturation.split('\n').filter((l) => /^(baseline|hit|miss-nocache) /.test(l));
    expect(rows.map((r) => r.split(/\s+/)[0])).toEqual(['baseline', 'hit', 'miss-nocache']);
    for (const r of rows) expect(Number(r.split(/\s+/)[1])).toBeGreaterThan(0); // calls/s
  }, 120_000);

  it('refuses OPA-Envoy rows without a binary, and a path that is none, saying where one comes from', () => {
    const none = spawnSync(process.execPath, [BENCH, '--ghz', ghz(), '--only', 'opa-envoy'], { encoding: 'utf8', timeout: 30_000 });
    expect(none.status).not.toBe(0);
    expect(none.stderr).toContain('--only names OPA-Envoy scenarios: pass --opa-envoy PATH');
    const bad = spawnSync(process.execPath, [BENCH, '--ghz', ghz(), '--opa-envoy', '/nonexistent/opa-envoy-plugin', '--only', 'opa-envoy'], { encoding: 'utf8', timeout: 30_000 });
    expect(bad.status).not.toBe(0);
    expect(bad.stderr).toContain('--opa-envoy /nonexistent/opa-envoy-plugin: not an executable file');
  });
});
