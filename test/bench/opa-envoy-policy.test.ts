import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { Authorizer } from '../../ext-authz/src/authorizer.js';
import { DecisionCache } from '../../ext-authz/src/decision-cache.js';
import type { PolicyDecision } from '../../ext-authz/src/decision.js';
import { loadManifestFile } from '../../ext-authz/src/manifest.js';
import { STRICT_PATHS } from '../../ext-authz/src/path.js';
import { readBundle } from '../../ext-authz/src/policy-bundle.js';
import { PolicyEngine } from '../../ext-authz/src/policy-engine.js';
import { CASES_FILE, loadCases } from '../../bench/opa-envoy/agreement.js';
import { CHECKED_POLICY, OPA_ENVOY_DIR, POLICY } from '../../bench/opa-envoy/peer.js';
import { httpCheck } from '../helpers/authz-client.js';
import { EXAMPLE_MANIFEST, TOOLS_BIN, requireBundle, requireTool } from '../helpers/paths.js';

/**
 * The benchmark compares infergate with OPA-Envoy running
 * bench/opa-envoy/policy.rego, a hand-written Rego rendering of the example
 * manifest. That comparison is only fair if both make the same decisions, so
 * one table (bench/opa-envoy/cases.json) is checked against both: against
 * infergate's real policy (the wasm bundle, the example manifest) here, and
 * against policy.rego with the project's `opa test`. The benchmark also sends
 * the table to both real servers before it measures.
 */
const cases = loadCases();

function opa(): string {
  return requireTool(`${TOOLS_BIN}/opa`, 'run `make setup` (go install github.com/open-policy-agent/opa)');
}

describe('the request table both policies must agree on', () => {
  it('holds allowed and denied requests under unique names', () => {
    expect(new Set(cases.map((c) => c.name)).size).toBe(cases.length);
    expect(cases.filter((c) => c.allowed).length).toBeGreaterThanOrEqual(5);
    expect(cases.filter((c) => !c.allowed).length).toBeGreaterThanOrEqual(10);
  });
});

describe('infergate\'s own policy gives every request in the table its decision', () => {
  let authorizer: Authorizer;

  beforeAll(async () => {
    const engine = await PolicyEngine.create(await readBundle(requireBundle()), { access_manifest: loadManifestFile(EXAMPLE_MANIFEST).data });
    authorizer = new Authorizer(() => ({ engine, revision: 'test', paths: STRICT_PATHS, endUsers: null }),
      new DecisionCache<PolicyDecision>({ max: 0, ttlMs: 1, jitter: 0 }), { trustXfcc: false, inputHeaders: [] });
  });

  it.each(cases.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    const v = await authorizer.check(httpCheck(c.principal ?? undefined, c.method, c.path, c.host));
    expect({ allowed: v.allowed, code: v.code }).toEqual({ allowed: c.allowed, code: c.code });
  });
});

describe('bench/opa-envoy: the OPA-Envoy policy, with the project\'s opa', () => {
  it('is Rego v1 that passes opa check --strict', () => {
    execFileSync(opa(), ['check', '--strict', POLICY, CHECKED_POLICY], { encoding: 'utf8' });
  });

  it('gives every request in the table the same decision (opa test), and checked.rego keeps allows and errors on denies', () => {
    const files = [POLICY, CHECKED_POLICY, join(OPA_ENVOY_DIR, 'policy_test.rego'), join(OPA_ENVOY_DIR, 'checked_test.rego'), CASES_FILE];
    let out: string;
    try {
      out = execFileSync(opa(), ['test', '-v', ...files], { encoding: 'utf8' });
    } catch (err) {
      const e = err as { stdout?: string; stderr?: string };
      throw new Error(`opa test failed:\n${e.stdout ?? ''}${e.stderr ?? ''}`);
    }
    expect(out).toMatch(/^PASS: 5\/5$/m);
    expect(out).toContain('mismatches [name, OPA-Envoy allow]: set()');
  });
});
