import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Authorizer } from '../../ext-authz/src/authorizer.js';
import { DecisionCache } from '../../ext-authz/src/decision-cache.js';
import type { PolicyDecision } from '../../ext-authz/src/decision.js';
import { loadManifestFile } from '../../ext-authz/src/manifest.js';
import { readBundle } from '../../ext-authz/src/policy-bundle.js';
import { STRICT_PATHS } from '../../ext-authz/src/path.js';
import { PolicyEngine } from '../../ext-authz/src/policy-engine.js';
import { httpCheck } from '../helpers/authz-client.js';
import { EXAMPLE_MANIFEST, TOOLS_BIN, requireBundle, requireTool } from '../helpers/paths.js';

const GATEWAY = 'spiffe://cluster.local/ns/gateway/sa/api-gateway';

/** Compiles Rego with the pinned OPA, as an operator building a custom bundle would. */
function opaBuild(dir: string, rego: string, entrypoint: string): string {
  const opa = requireTool(`${TOOLS_BIN}/opa`, 'run `make setup` (go install github.com/open-policy-agent/opa)');
  writeFileSync(join(dir, 'policy.rego'), rego);
  const out = join(dir, `bundle-${entrypoint.replace(/\//g, '_')}.tar.gz`);
  execFileSync(opa, ['build', '-t', 'wasm', '-e', entrypoint, join(dir, 'policy.rego'), '-o', out]);
  return out;
}

describe('the default Rego policy, compiled to wasm and evaluated with opa-wasm', () => {
  let authorizer: Authorizer;

  beforeAll(async () => {
    const bundle = await readBundle(requireBundle());
    const engine = await PolicyEngine.create(bundle, { access_manifest: loadManifestFile(EXAMPLE_MANIFEST).data });
    authorizer = new Authorizer(() => ({ engine, revision: 'test', paths: STRICT_PATHS, endUsers: null }), new DecisionCache<PolicyDecision>({ max: 0, ttlMs: 1, jitter: 0 }), { trustXfcc: false, inputHeaders: [] });
  });

  it.each([
    ['allows the gateway to predict', GATEWAY, 'POST', '/v1/models/bert:predict', 'model-serving.ml.svc.cluster.local', true, 'allowed', 'gateway-predicts'],
    ['allows v2 inference on a subdomain host', GATEWAY, 'POST', '/v2/models/bert/infer', 'eu.models.internal', true, 'allowed', 'gateway-predicts'],
    ['denies the gateway a GET', GATEWAY, 'GET', '/v1/models/bert:predict', 'model-serving.ml.svc.cluster.local', false, 'no_matching_rule', null],
    ['denies the gateway another host', GATEWAY, 'POST', '/v1/models/bert:predict', 'other.ml', false, 'no_matching_rule', null],
    ['lets a deny rule win over an allow rule', 'spiffe://cluster.local/ns/batch/sa/job', 'GET', '/admin/x', 'h', false, 'denied_by_rule', 'no-admin'],
    ['matches a namespace wildcard', 'spiffe://cluster.local/ns/batch/sa/job', 'GET', '/v1/models/x', 'h', true, 'allowed', 'batch-reads'],
    ['denies a quarantined workload everywhere', 'spiffe://cluster.local/ns/ml/sa/compromised', 'GET', '/', 'h', false, 'quarantined', null],
    ['denies another trust domain', 'spiffe://other.td/ns/batch/sa/job', 'GET', '/', 'h', false, 'foreign_trust_domain', null],
  ] as const)('%s', async (_name, caller, method, path, host, allowed, code, rule) => {
    const v = await authorizer.check(httpCheck(caller, method, path, host));
    expect({ allowed: v.allowed, code: v.code, rule: v.rule }).toEqual({ allowed, code, rule });
  });

  it('lets only route-free rules allow a check without an HTTP section', async () => {
    const tcp = (principal: string) => authorizer.check({ attributes: { source: { principal } } });
    expect((await tcp(GATEWAY)).code).toBe('no_matching_rule');
    expect(await tcp('spiffe://cluster.local/ns/monitoring/sa/prober')).toMatchObject({ allowed: true, rule: 'mesh-probes' });
  });

  it('denies everything when the bundle is loaded without a manifest (fail closed)', async () => {
    const engine = await PolicyEngine.create(await readBundle(requireBundle()), {});
    const a = new Authorizer(() => ({ engine, revision: 'x', paths: STRICT_PATHS, endUsers: null }), new DecisionCache<PolicyDecision>({ max: 0, ttlMs: 1, jitter: 0 }), { trustXfcc: false, inputHeaders: [] });
    expect((await a.check(httpCheck(GATEWAY, 'POST', '/v1/models/bert:predict'))).code).toBe('policy_error');
  });
});

describe('custom policy bundles', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'infergate-bundle-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('evaluates a custom bundle with its own reason, status and headers in the input', async () => {
    const path = opaBuild(
      dir,
      `package infergate.authz
import rego.v1
default decision := {"allowed": false, "code": "tenant_mismatch", "http_status": 429}
decision := {"allowed": true, "rule": "tenant"} if input.headers["x-tenant"] == input.caller.namespace
`,
      'infergate/authz/decision',
    );
    const engine = await PolicyEngine.create(await readBundle(path), {});
    const a = new Authorizer(() => ({ engine, revision: 'x', paths: STRICT_PATHS, endUsers: null }), new DecisionCache<PolicyDecision>({ max: 10, ttlMs: 1000, jitter: 0 }), { trustXfcc: false, inputHeaders: ['x-tenant'] });
    expect(await a.check(httpCheck(GATEWAY, 'GET', '/', 'h', { 'x-tenant': 'gateway' }))).toMatchObject({ allowed: true, code: 'allowed', rule: 'tenant' });
    expect(await a.check(httpCheck(GATEWAY, 'GET', '/', 'h', { 'x-tenant': 'blue' }))).toMatchObject({ allowed: false, code: 'tenant_mismatch', httpStatus: 429 });
  });

  it('refuses a bundle built without the infergate entrypoint, naming what it found', async () => {
    const path = opaBuild(dir, 'package other\nimport rego.v1\nallow := true\n', 'other/allow');
    await expect(PolicyEngine.create(await readBundle(path), {})).rejects.toThrow(
      'policy has no entrypoint infergate/authz/decision (found: other/allow); build with opa build -t wasm -e infergate/authz/decision',
    );
  });

  it('denies with policy_error when a custom policy returns a malformed decision', async () => {
    const path = opaBuild(dir, 'package infergate.authz\nimport rego.v1\ndecision := "yes"\n', 'infergate/authz/decision');
    const engine = await PolicyEngine.create(await readBundle(path), {});
    const a = new Authorizer(() => ({ engine, revision: 'x', paths: STRICT_PATHS, endUsers: null }), new DecisionCache<PolicyDecision>({ max: 10, ttlMs: 1000, jitter: 0 }), { trustXfcc: false, inputHeaders: [] });
    const v = await a.check(httpCheck(GATEWAY, 'GET', '/'));
    expect(v).toMatchObject({ allowed: false, code: 'policy_error' });
    expect(v.detail).toBe('policy decision must be an object, got string');
  });

  it.each([
    ['a missing file', '/nonexistent/b.tar.gz', 'b.tar.gz: cannot read bundle: ENOENT'],
    ['a file that is neither wasm nor a bundle', 'text', 'not a wasm module or an opa bundle (tar.gz)'],
  ])('rejects %s with a clear error', async (_name, content, message) => {
    let path = content;
    if (!content.startsWith('/')) {
      path = join(dir, 'junk.tar.gz');
      writeFileSync(path, content);
    }
    await expect(readBundle(path)).rejects.toThrow(message);
  });
});
