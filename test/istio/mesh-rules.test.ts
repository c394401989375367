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
    expect(docs.filter((d) => (d as { kind: string }).kind === 'AuthorizationPolicy')).toHaveLength(2);
    expect(docs.filter((d) => (d as { kind: string }).kind === 'EnvoyFilter')).toHaveLength(2);
    expect(docs.filter((d) => (d as { kind: string }).kind === 'WasmPlugin')).toHaveLength(wasmPlugins);
    expect(meshRuleErrors(docs, mesh)).toEqual([]);
  });
});
