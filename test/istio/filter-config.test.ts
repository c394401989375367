import { describe, expect, it } from 'vitest';
import { alertRules } from '../../istio/render/alerts.js';
import { meshConfig } from '../../istio/render/mesh-config.js';
import { renderFiles } from '../../istio/render/render.js';
import { builtFilter } from '../filters/built.js';
import { ProxyWasmHost } from '../filters/host.js';
import { exampleInput, variantInput } from './helpers/example.js';

/**
 * The configs render writes are the ones the built filters accept: each
 * rendered pluginConfig (WasmPlugin) and configuration string (EnvoyFilter)
 * goes through the module's own on_configure in the test proxy-wasm host.
 */

type Doc = { kind: string; spec: any };

function docs(): Doc[] {
  return renderFiles(exampleInput()).flatMap((f) => f.documents) as Doc[];
}

const moduleOf = (name: string): 'rate-limit' | 'payload-limit' => (name.endsWith('rate-limit') ? 'rate-limit' : 'payload-limit');

describe('rendered filter configs against the built filters', () => {
  it('every WasmPlugin pluginConfig is accepted by its module', () => {
    const plugins = docs().filter((d) => d.kind === 'WasmPlugin');
    expect(plugins).toHaveLength(4);
    for (const p of plugins) expect(new ProxyWasmHost(builtFilter(moduleOf(p.spec.pluginName))).configure(p.spec.pluginConfig), p.spec.pluginName).toBe(true);
  });

  it('every EnvoyFilter configuration string is accepted by its module', () => {
    const patches = docs().filter((d) => d.kind === 'EnvoyFilter').flatMap((d) => d.spec.configPatches);
    expect(patches).toHaveLength(4);
    for (const p of patches) {
      const cfg = p.patch.value.typed_config.config;
      expect(new ProxyWasmHost(builtFilter(moduleOf(cfg.name))).configure(cfg.configuration.value), cfg.name).toBe(true);
    }
  });

  it('a config the module rejects is also rejected by the deployment schema (the host can say no)', () => {
    const host = new ProxyWasmHost(builtFilter('rate-limit'));
    expect(host.configure({ identity: 'peer_certificate', default: { perSecond: 0, burst: 1 } })).toBe(false);
    expect(() => variantInput((d) => { d.filters.rateLimit.config.default.perSecond = 0; })).toThrow('must be at least 1 (deployment.filters.rateLimit.config.default.perSecond)');
  });

  it('the rate-limit alert reads the counter the filter defines, as Envoy exports it to Prometheus', () => {
    const host = new ProxyWasmHost(builtFilter('rate-limit'));
    expect(host.configure(exampleInput().deployment.filters.rateLimit!.config)).toBe(true);
    expect(host.metrics.names).toContain('infergate.rate_limit.rejected');
    // Envoy prefixes Wasm metrics with the custom namespace "wasmcustom." and strips it (and adds no envoy_) in Prometheus output.
    const promName = 'infergate.rate_limit.rejected'.replace(/\./g, '_');
    const rule = alertRules(exampleInput().deployment).find((r) => r.alert === 'InfergateRateLimitRejections')!;
    expect(rule.expr).toContain(`rate(${promName}[5m])`);
  });

  it('the sidecars keep the filters\' counters (Istio drops stats outside its inclusion list)', () => {
    const spec = (meshConfig(exampleInput().deployment) as any).spec;
    const [regex] = spec.meshConfig.defaultConfig.proxyStatsMatcher.inclusionRegexps;
    for (const filter of ['rate-limit', 'payload-limit'] as const) {
      const host = new ProxyWasmHost(builtFilter(filter));
      const cfg = filter === 'rate-limit' ? exampleInput().deployment.filters.rateLimit!.config : exampleInput().deployment.filters.payloadLimit!.config;
      expect(host.configure(cfg)).toBe(true);
      expect(host.metrics.names.length).toBeGreaterThan(0);
      for (const name of host.metrics.names) expect(`wasmcustom.${name}`).toMatch(new RegExp(`^${regex}$`));
    }
    expect('wasmcustom.other.metric').not.toMatch(new RegExp(`^${regex}$`));
  });
});
