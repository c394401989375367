import { describe, expect, it } from 'vitest';
import { alertRules } from '../../istio/render/alerts.js';
import { filterChain } from '../../istio/render/filter-chain.js';
import type { RenderInput } from '../../istio/render/load-input.js';
import { meshConfig } from '../../istio/render/mesh-config.js';
import { renderFiles } from '../../istio/render/render.js';
import type { Verdict } from '../../ext-authz/src/authorizer.js';
import { quotaKey } from '../../ext-authz/src/check-response.js';
import { builtFilter, FILTERS } from '../filters/built.js';
import { header, ProxyWasmHost } from '../filters/host.js';
import { exampleInput, separateInput, variantInput } from './helpers/example.js';

/**
 * The configs render writes are the ones the built filters accept: each
 * rendered pluginConfig (WasmPlugin) and configuration string (EnvoyFilter)
 * goes through the on_configure of the module it names (guard in the default
 * form, rate-limit and payload-limit in the separate form) in the test
 * proxy-wasm host.
 */

type Doc = { kind: string; metadata: { name: string }; spec: any };
type Module = (typeof FILTERS)[number];

function docs(input: RenderInput): Doc[] {
  return renderFiles(input).flatMap((f) => f.documents) as Doc[];
}

// The example renders the guard form (the default); the separate form is the same filters, one module each.
const FORMS: Array<[string, () => RenderInput, number]> = [
  ['guard', () => exampleInput(), 1],
  ['separate', () => separateInput(), 2],
];

/** The built module a rendered resource names: WasmPlugin by its plugin name and url, EnvoyFilter by its module file. */
function moduleNamed(id: string): Module {
  expect(FILTERS).toContain(id);
  return id as Module;
}

describe.each(FORMS)('rendered filter configs against the built filters (%s form)', (form, input, perWorkload) => {
  it('every WasmPlugin pluginConfig is accepted by its module', () => {
    const plugins = docs(input()).filter((d) => d.kind === 'WasmPlugin');
    expect(plugins).toHaveLength(2 * perWorkload);
    for (const p of plugins) {
      // The module the url names: for guard, the build the configuration needs (no response cap here).
      const id = moduleNamed(p.spec.url.match(/^oci:\/\/ghcr\.io\/infergate\/([^:]+):0\.1\.0$/)[1]);
      expect(p.spec.pluginName).toBe(`infergate-${id.replace(/^guard-.*$/, 'guard')}`);
      if (form === 'guard') expect(id).toBe('guard-no-response-body');
      expect(new ProxyWasmHost(builtFilter(id)).configure(p.spec.pluginConfig), p.spec.pluginName).toBe(true);
    }
  });

  it('every EnvoyFilter configuration string is accepted by its module', () => {
    // The wasm filters' EnvoyFilters (the global quotas' have no module: test/istio/global-quotas-envoy.test.ts runs them).
    const patches = docs(input()).filter((d) => d.kind === 'EnvoyFilter' && d.metadata.name.endsWith('-filters')).flatMap((d) => d.spec.configPatches);
    expect(patches).toHaveLength(2 * perWorkload);
    for (const p of patches) {
      const cfg = p.patch.value.typed_config.config;
      const id = moduleNamed(cfg.vm_config.code.local.filename.match(/\/([^/]+)\.wasm$/)[1]);
      expect(cfg.name).toBe(`infergate-${id.replace(/^guard-.*$/, 'guard')}`);
      expect(new ProxyWasmHost(builtFilter(id)).configure(cfg.configuration.value), cfg.name).toBe(true);
    }
  });

  it("gives each tenant of a tier the tier's budget of its own, keyed on the quota key the server sets", () => {
    // The first WasmPlugin of a workload is the one that rate-limits (the guard, or rate-limit in the separate form).
    const plugin = docs(input()).find((d) => d.kind === 'WasmPlugin')!;
    const id = moduleNamed(plugin.spec.url.match(/^oci:\/\/ghcr\.io\/infergate\/([^:]+):0\.1\.0$/)[1]);
    expect(['guard-no-response-body', 'rate-limit']).toContain(id);
    const host = new ProxyWasmHost(builtFilter(id));
    expect(host.configure(plugin.spec.pluginConfig)).toBe(true);
    // The header values come from the server's own quotaKey, so a change to its format fails here.
    const key = (caller: string, endUser: { tenant: string; tier: string | null } | null) =>
      quotaKey({ caller, input: { end_user: endUser && { issuer: 'https://auth.example.com', scopes: [], ...endUser } } } as unknown as Verdict)!;
    const send = (quota: string | null) =>
      host.request([[':method', 'POST'], [':path', '/v1/models/text-small:predict'], ...(quota === null ? [] : [['x-infergate-quota', quota] as [string, string]])]);
    const remaining = (quota: string) => header(send(quota).responseHeaders, 'x-ratelimit-remaining');
    const GATEWAY = 'spiffe://cluster.local/ns/gateway/sa/api-gateway';
    // Free tier: burst 5 per tenant; acme spends its own, globex still has its whole budget.
    const acmeFree = key(GATEWAY, { tenant: 'acme', tier: 'free' });
    expect(acmeFree).toBe('tenant/free/acme');
    expect([1, 2, 3, 4, 5].map(() => remaining(acmeFree))).toEqual(['4', '3', '2', '1', '0']);
    expect(send(acmeFree).localReply?.status).toBe(429);
    expect(remaining(key(GATEWAY, { tenant: 'globex', tier: 'free' }))).toBe('4');
    // Premium tier (burst 100), the gateway's own traffic (its workload rule, 1000), and the default (100) for a tenant without a tier.
    expect(remaining(key(GATEWAY, { tenant: 'acme', tier: 'premium' }))).toBe('99');
    expect(remaining(key(GATEWAY, null))).toBe('999');
    expect(remaining(key('spiffe://cluster.local/ns/batch/sa/scorer', null))).toBe('4');
    expect(remaining(key(GATEWAY, { tenant: 'initech', tier: null }))).toBe('99');
    // No quota key (ext_authz did not run): refused, unauthenticated: deny.
    expect(send(null).localReply?.status).toBe(403);
  });

  it('the sidecars keep the filters\' counters (Istio drops stats outside its inclusion list)', () => {
    const deployment = input().deployment;
    const spec = (meshConfig(deployment) as any).spec;
    const [regex] = spec.meshConfig.defaultConfig.proxyStatsMatcher.inclusionRegexps;
    const chain = filterChain(deployment);
    expect(chain).toHaveLength(perWorkload);
    for (const f of chain) {
      const host = new ProxyWasmHost(builtFilter(f.module));
      expect(host.configure(f.config)).toBe(true);
      expect(host.metrics.names.length).toBeGreaterThan(0);
      for (const name of host.metrics.names) expect(`wasmcustom.${name}`).toMatch(new RegExp(`^${regex}$`));
    }
    expect('wasmcustom.other.metric').not.toMatch(new RegExp(`^${regex}$`));
  });
});

describe('rendered filter configs and the schema', () => {
  it('a config the module rejects is also rejected by the deployment schema (the host can say no)', () => {
    const bad = { identity: 'peer_certificate', default: { perSecond: 0, burst: 1 } };
    expect(new ProxyWasmHost(builtFilter('rate-limit')).configure(bad)).toBe(false);
    expect(new ProxyWasmHost(builtFilter('guard')).configure({ rateLimit: bad })).toBe(false);
    expect(() => variantInput((d) => { d.filters.rateLimit.config.default.perSecond = 0; })).toThrow('must be at least 1 (deployment.filters.rateLimit.config.default.perSecond)');
  });

  it('the rate-limit alert reads the counter the filters define (guard and rate-limit alike), as Envoy exports it to Prometheus', () => {
    const rateLimit = exampleInput().deployment.filters.rateLimit!.config;
    for (const [id, cfg] of [['guard', { rateLimit }], ['rate-limit', rateLimit]] as const) {
      const host = new ProxyWasmHost(builtFilter(id));
      expect(host.configure(cfg), id).toBe(true);
      expect(host.metrics.names, id).toContain('infergate.rate_limit.rejected');
    }
    // Envoy prefixes Wasm metrics with the custom namespace "wasmcustom." and strips it (and adds no envoy_) in Prometheus output.
    const promName = 'infergate.rate_limit.rejected'.replace(/\./g, '_');
    const rule = alertRules(exampleInput().deployment).find((r) => r.alert === 'InfergateRateLimitRejections')!;
    expect(rule.expr).toContain(`rate(${promName}[5m])`);
  });
});
