import { readFileSync } from 'node:fs';
import { parseAllDocuments } from 'yaml';
import { describe, expect, it } from 'vitest';
import { customPolicyErrors, envoyFilterErrors, meshRuleErrors, providerErrors, wasmPluginErrors } from '../../istio/checks/index.js';
import { renderFiles } from '../../istio/render/render.js';
import { ROOT } from '../helpers/paths.js';
import { exampleInput, separateInput } from './helpers/example.js';
import { schemaErrors } from './helpers/schemas.js';

const FIXTURES = `${ROOT}test/istio/fixtures/mesh-rules/`;

function load(file: string): { docs: Array<Record<string, unknown>>; mesh: unknown } {
  const docs = parseAllDocuments(readFileSync(FIXTURES + file, 'utf8')).map((d) => d.toJS() as Record<string, unknown>);
  return { docs, mesh: docs.find((d) => d.kind === 'IstioOperator') };
}

// Each fixture is valid against the real CRD schema, and breaks one rule Istio enforces beyond it.
const CASES: Array<[string, string[]]> = [
  ['custom-principals.yaml', ['AuthorizationPolicy ml/custom-principals: rules[0].from[0].source.principals is not supported with CUSTOM action']],
  ['custom-namespaces.yaml', [
    'AuthorizationPolicy ml/custom-namespaces: rules[0].from[0].source.notNamespaces is not supported with CUSTOM action',
    'AuthorizationPolicy ml/custom-namespaces: rules[0].from[1].source.requestPrincipals is not supported with CUSTOM action',
  ]],
  ['custom-when-principal.yaml', ['AuthorizationPolicy ml/custom-when-principal: rules[0].when[0].key "source.principal" is not supported with CUSTOM action']],
  ['custom-no-rules.yaml', ['AuthorizationPolicy ml/custom-no-rules: CUSTOM policy needs rules (use [{}] to check every request)']],
  ['custom-empty-rules.yaml', ['AuthorizationPolicy ml/custom-empty-rules: CUSTOM policy needs rules (use [{}] to check every request)']],
  ['unknown-provider.yaml', ['AuthorizationPolicy ml/unknown-provider: provider "opa" is not an extension provider in the mesh config']],
  ['two-providers.yaml', [
    'AuthorizationPolicy ml/b: provider "other" is not an extension provider in the mesh config',
    'AuthorizationPolicy ml/b: workload already uses provider "infergate"; Istio allows one per workload',
  ]],
  ['provider-fail-open.yaml', [
    'extension provider "infergate": envoyExtAuthzGrpc has no field "includeRequestHeadersInCheck"',
    'extension provider "infergate": failOpen must be false (fail closed)',
  ]],
  ['access-log-provider.yaml', [
    'extension provider "infergate-access-log": envoyFileAccessLog has no field "file"',
    'extension provider "infergate-access-log": envoyFileAccessLog.path is required',
    'extension provider "infergate-access-log": envoyFileAccessLog.logFormat takes text or labels',
  ]],
  ['envoy-filter-insert-after.yaml', ['EnvoyFilter ml/envoy-filter-insert-after: configPatches[0]: must be INSERT_BEFORE envoy.filters.http.router (after ext_authz), got INSERT_AFTER envoy.filters.http.router']],
  ['envoy-filter-before-authz.yaml', ['EnvoyFilter ml/envoy-filter-before-authz: configPatches[0]: must be INSERT_BEFORE envoy.filters.http.router (after ext_authz), got INSERT_BEFORE envoy.filters.http.ext_authz']],
  ['envoy-filter-first.yaml', ['EnvoyFilter ml/envoy-filter-first: configPatches[0]: must be INSERT_BEFORE envoy.filters.http.router (after ext_authz), got INSERT_FIRST envoy.filters.http.router']],
  ['envoy-filter-outbound.yaml', ['EnvoyFilter ml/envoy-filter-outbound: configPatches[0]: match.context must be SIDECAR_INBOUND, got SIDECAR_OUTBOUND']],
  ['wasm-plugin-authn.yaml', ["WasmPlugin ml/wasm-plugin-authn: phase must be STATS (after Istio's authorization), got AUTHN"]],
  ['wasm-plugin-fail-open.yaml', ['WasmPlugin ml/wasm-plugin-fail-open: failStrategy must be FAIL_CLOSE, got FAIL_OPEN']],
  ['wasm-plugin-client.yaml', ['WasmPlugin ml/wasm-plugin-client: match must be mode SERVER (inbound only)']],
  ['allow-with-principals.yaml', []],
  // The global quotas' EnvoyFilters (istio/checks/global-quotas.ts).
  ['quota-client-header.yaml', ['EnvoyFilter ml/quota-client-header: configPatches[1]: rate_limits[0].actions[1]: request_headers reads "x-tenant-id", which a client controls: use the x-infergate-* headers ext_authz sets']],
  ['quota-unverified-actions.yaml', [
    'EnvoyFilter ml/quota-unverified-actions: configPatches[1]: rate_limits[0].actions[0]: remote_address is not an action on what ext_authz verified (use generic_key, request_headers or header_value_match on x-infergate-* headers and :path)',
    'EnvoyFilter ml/quota-unverified-actions: configPatches[1]: rate_limits[0].actions[1]: header_value_match reads "x-user-tier", which a client controls: match only x-infergate-* headers and :path',
    'EnvoyFilter ml/quota-unverified-actions: configPatches[1]: rate_limits[0].actions[2]: request_headers skip_if_absent would put everyone without "x-infergate-caller" in one bucket',
  ]],
  ['quota-fail-open.yaml', ['EnvoyFilter ml/quota-fail-open: configPatches[0]: the stage-0 ratelimit filter holds the fail-closed budgets and must set failure_mode_deny: true']],
  ['quota-filter-config.yaml', [
    'EnvoyFilter ml/quota-filter-config: configPatches[0]: domain must be "infergate", the one the rate-limit service\'s configuration has, got "other"',
    "EnvoyFilter ml/quota-filter-config: configPatches[0]: needs a timeout (Envoy's default, 20ms, fails calls under load)",
    'EnvoyFilter ml/quota-filter-config: configPatches[0]: enable_x_ratelimit_headers must be DRAFT_VERSION_03, so 429s say the limit and when it resets',
  ]],
  ['quota-unknown-cluster.yaml', ['EnvoyFilter ml/quota-unknown-cluster: configPatches[0]: calls cluster "outbound|8081||ratelimit.infergate-system.svc.cluster.local", which is no rendered Service\'s port (outbound|<port>||<name>.<namespace>.svc.cluster.local)']],
  ['quota-stage-without-filter.yaml', ['EnvoyFilter ml/quota-stage-without-filter: configPatches[1]: rate_limits[0]: stage 1 has no ratelimit filter in this EnvoyFilter, so its budget is never enforced']],
  ['quota-route-replace.yaml', ['EnvoyFilter ml/quota-route-replace: configPatches[1]: an HTTP_ROUTE patch may only MERGE route.rate_limits, got MERGE {"route":{"cluster":"elsewhere","rate_limits":[{"stage":0,"actions":[{"generic_key":{"descriptor_key":"budget","descriptor_value":"b"}},{"request_headers":{"header_name":"x-infergate-tenant","descriptor_key":"tenant"}}]}]}}']],
  ['quota-before-guard.yaml', ["EnvoyFilter ml/quota-before-guard: priority 10 must be above EnvoyFilter ml/guard's 10, or its ratelimit filters land before the guard"]],
  ['header-filter-request-mutation.yaml', ['EnvoyFilter ml/header-filter-request-mutation: configPatches[0]: a header_mutation filter may go first only with response mutations alone: it would change requests before ext_authz']],
];

describe('Istio rules the CRD schemas miss', () => {
  it.each(CASES)('%s', (file, expected) => {
    const { docs, mesh } = load(file);
    for (const d of docs) expect(schemaErrors(d), `${file} should be schema-valid`).toEqual([]);
    expect(meshRuleErrors(docs, mesh)).toEqual(expected);
  });

  it('each rule function ignores kinds it does not own', () => {
    const { docs } = load('wasm-plugin-authn.yaml');
    expect(customPolicyErrors(docs[0])).toEqual([]);
    expect(envoyFilterErrors(docs[0])).toEqual([]);
    expect(wasmPluginErrors({ kind: 'EnvoyFilter' })).toEqual([]);
  });

  it('an EnvoyFilter without patches is an error', () => {
    expect(envoyFilterErrors({ kind: 'EnvoyFilter', metadata: { name: 'x', namespace: 'ml' }, spec: {} })).toEqual(['EnvoyFilter ml/x: no configPatches']);
  });

  it('a mesh config without the gRPC provider fails every CUSTOM policy', () => {
    const { docs } = load('custom-principals.yaml');
    expect(providerErrors(docs, undefined)).toEqual(['AuthorizationPolicy ml/custom-principals: provider "infergate" is not an extension provider in the mesh config']);
  });

  it.each([
    ['guard form (the default)', () => exampleInput(), 2],
    ['separate form', () => separateInput(), 4],
  ] as const)('the rendered example breaks none of them: %s', (_form, input, wasmPlugins) => {
    const files = renderFiles(input());
    const docs = files.filter((f) => f.kubernetes).flatMap((f) => f.documents);
    const mesh = files.find((f) => f.name === 'mesh-config.yaml')!.documents[0];
    // Per workload a CUSTOM policy, and the ALLOW policies of the rate-limit service and Redis.
    expect(docs.filter((d) => (d as { kind: string }).kind === 'AuthorizationPolicy')).toHaveLength(4);
    // Per workload the guard's EnvoyFilter and the global quotas'.
    expect(docs.filter((d) => (d as { kind: string }).kind === 'EnvoyFilter')).toHaveLength(4);
    expect(docs.filter((d) => (d as { kind: string }).kind === 'WasmPlugin')).toHaveLength(wasmPlugins);
    expect(meshRuleErrors(docs, mesh)).toEqual([]);
  });
});
