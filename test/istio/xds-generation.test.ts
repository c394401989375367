import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { filterChain } from '../../istio/render/filter-chain.js';
import { QUOTA_FILTER, quotaModes, quotaRateLimits } from '../../istio/render/global-quotas.js';
import type { RenderInput } from '../../istio/render/load-input.js';
import { fileText, renderFiles, type FilterForm, type RenderedFile } from '../../istio/render/render.js';
import { ROOT } from '../helpers/paths.js';
import { exampleInput, separateInput } from './helpers/example.js';

/**
 * Istio's own xDS generation on fresh renderings: istiod's listener builder,
 * run in-process through Istio's test harness by the Go test in
 * test/istio-xds, turns the rendered resources and mesh config into the
 * sidecars' inbound HTTP filter chains, and asserts on them. For a workload
 * the manifest protects: Istio's CUSTOM ext_authz filter calling the
 * infergate Service (outbound|9191||infergate-authz...), fail closed, then
 * infergate's filters in chain order, before the router; STRICT mTLS; the
 * infergate access log; with global quotas, the header filter first, the
 * ratelimit filters after infergate's filters and before the router, and the
 * rendered rate limits on every inbound route. For a workload it does not
 * select: none of that. Both filter forms, guard and separate filters.
 */

const XDS_DIR = `${ROOT}test/istio-xds`;
const BINARY = `${ROOT}.tools/istio-xds.test`;
const tmp = mkdtempSync(join(tmpdir(), 'infergate-xds-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

// The first build compiles much of istiod (on 2 cores: ~3 min after set-up's istioctl build,
// ~6 min from an empty build cache); set-up runs the same script, so within `make test` it only checks a stamp. Each test
// allows for that first build, whichever runs first.
const BUILD_TIMEOUT = 20 * 60_000;
let built = false;

/** The Go test binary, (re)built by build.sh; fails (never skips) without Go, saying how to install it. */
function binary(): string {
  if (!built) {
    const r = spawnSync('bash', [`${XDS_DIR}/build.sh`], { encoding: 'utf8', timeout: BUILD_TIMEOUT });
    if (r.status !== 0) throw new Error(`test/istio-xds/build.sh failed (exit ${r.status}):\n${r.stdout}${r.stderr}${r.error ?? ''}`);
    built = true;
  }
  return BINARY;
}

function writeRendering(name: string, files: RenderedFile[]): string {
  const dir = join(tmp, name);
  mkdirSync(dir, { recursive: true });
  for (const f of files) writeFileSync(join(dir, f.name), fileText(f, 'infergate.yaml'));
  return dir;
}

/** Runs the Go test on one rendered directory and filter form. */
function xdsTest(dir: string, form: FilterForm, input: RenderInput): { status: number | null; output: string } {
  const r = spawnSync(binary(), ['-test.v', '-test.count=1'], {
    cwd: XDS_DIR,
    encoding: 'utf8',
    timeout: 120_000,
    env: {
      ...process.env,
      INFERGATE_RENDERED_DIR: dir,
      INFERGATE_FILTER_FORM: form,
      INFERGATE_FILTERS: filterChain(input.deployment).map((f) => f.id).join(','),
      INFERGATE_QUOTA_FILTERS: input.globalQuotas === null ? '' : quotaModes(input.globalQuotas).map((m) => QUOTA_FILTER[m]).join(','),
      INFERGATE_RATE_LIMITS: JSON.stringify(input.globalQuotas === null ? [] : quotaRateLimits(input.globalQuotas)),
    },
  });
  // Istio's harness logs errors it ignores (missing Gateway API CRD annotations); keep the test's own lines.
  const output = `${r.stdout}${r.stderr}`.split('\n').filter((l) => !/^\S+Z\t(info|error|warn)\t/.test(l)).join('\n');
  return { status: r.status, output };
}

type Edit = (files: RenderedFile[]) => void;

function rendering(name: string, input: RenderInput, edit: Edit = () => {}): string {
  const files = renderFiles(input);
  edit(files);
  return writeRendering(name, files);
}

/** The documents of one rendered file, to break on purpose. */
function docs(files: RenderedFile[], name: string): any[] {
  const f = files.find((x) => x.name === name);
  if (!f) throw new Error(`render wrote no ${name}`);
  return f.documents as any[];
}

const INPUTS: Array<[string, () => RenderInput]> = [
  ['the example (guard form)', exampleInput],
  ['the example with separate filters', () => separateInput()],
];

describe("Istio's xDS generation on the rendered resources", () => {
  for (const [name, inputOf] of INPUTS) {
    it.each(['wasmplugin', 'envoyfilter'] as const)(`${name}, %s form: ext_authz to infergate then infergate's filters on the protected workload only`, (form) => {
      const input = inputOf();
      const r = xdsTest(rendering(`${name.replace(/\W+/g, '-')}-${form}`, input), form, input);
      expect(r.status, r.output).toBe(0);
      expect(r.output).toContain('--- PASS: TestInboundHTTPFilterChain');
    }, BUILD_TIMEOUT);
  }

  // The Go test must be able to fail, or the passes above prove nothing.
  it('fails, for the placement, when the EnvoyFilter puts the guard first in the chain (before ext_authz)', () => {
    const input = exampleInput();
    const dir = rendering('broken-insert-first', input, (files) => {
      for (const ef of docs(files, 'envoy-filters.yaml')) for (const p of ef.spec.configPatches) p.patch.operation = 'INSERT_FIRST';
    });
    const r = xdsTest(dir, 'envoyfilter', input);
    expect(r.status, r.output).not.toBe(0);
    // Position 1: the global quotas' header filter is INSERT_FIRST too, and applied later.
    expect(r.output).toMatch(/misplaced: infergate filter infergate-guard \(position 1\) runs before ext_authz \(position \d+\)/);
  }, BUILD_TIMEOUT);

  it('fails, for the placement, when the global quotas\' EnvoyFilter is applied before the guard\'s, so its ratelimit filters run first', () => {
    const input = exampleInput();
    const dir = rendering('broken-quota-priority', input, (files) => {
      for (const ef of docs(files, 'global-quotas.yaml')) ef.spec.priority = 5;
    });
    const r = xdsTest(dir, 'envoyfilter', input);
    expect(r.status, r.output).not.toBe(0);
    expect(r.output).toMatch(/misplaced: ratelimit filter infergate-global-quotas-deny \(position \d+\) runs before infergate's filter infergate-guard/);
  }, BUILD_TIMEOUT);

  it('fails when the route rate limits miss the inbound routes (a port the routes do not have)', () => {
    const input = exampleInput();
    const dir = rendering('broken-quota-routes', input, (files) => {
      for (const ef of docs(files, 'global-quotas.yaml')) {
        for (const p of ef.spec.configPatches) if (p.applyTo === 'HTTP_ROUTE') p.match.routeConfiguration.portNumber = 9999;
      }
    });
    const r = xdsTest(dir, 'wasmplugin', input);
    expect(r.status, r.output).not.toBe(0);
    expect(r.output).toMatch(/model-serving chain .*: route "default" of virtual host "inbound\|http\|\d+" \(route config "inbound\|8080\|\|"\) has 0 rate limits, want 3/);
  }, BUILD_TIMEOUT);

  // In this Istio a WasmPlugin lands after CUSTOM ext_authz in every phase (even AUTHN), so the
  // WasmPlugin form is broken here by its selector instead.
  it('fails when a WasmPlugin loses its selector and reaches the unprotected workload', () => {
    const input = exampleInput();
    const dir = rendering('broken-wasm-selector', input, (files) => {
      for (const wp of docs(files, 'wasm-plugins.yaml')) delete wp.spec.selector;
    });
    const r = xdsTest(dir, 'wasmplugin', input);
    expect(r.status, r.output).not.toBe(0);
    expect(r.output).toMatch(/notebook chain .*: has infergate's filter extensions\.istio\.io\/trafficextension\/ml\.infergate-model-serving-guard/);
  }, BUILD_TIMEOUT);
});
