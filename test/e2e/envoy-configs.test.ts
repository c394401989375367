import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { renderLocalEnvoy } from '../../envoy/render-local.js';
import { validateEnvoyConfig } from '../helpers/envoy.js';
import { ROOT, requireTool } from '../helpers/paths.js';
import { makePki } from '../helpers/pki.js';
import { FIXED_PORTS, WORKLOADS, localBootstrap, localFilterChain, localGlobalQuotas } from '../../envoy/local-stack.js';

describe('Envoy configurations the project ships', () => {
  it('envoy/envoy.yaml is exactly what render-local produces (regenerate: node dist/envoy/render-local.js)', () => {
    expect(readFileSync(join(ROOT, 'envoy/envoy.yaml'), 'utf8')).toBe(renderLocalEnvoy());
  });

  it('envoy/envoy.yaml passes envoy --mode validate with the real binary', async () => {
    // The config names the demo PKI and the built filters by relative path, as a user would run it.
    makePki(join(ROOT, '.demo/pki'), WORKLOADS);
    for (const f of localFilterChain()) requireTool(join(ROOT, `build/filters/${f.module}.wasm`), 'run `make setup` to build the filters');
    const cwd = process.cwd();
    process.chdir(ROOT);
    try {
      const r = await validateEnvoyConfig(readFileSync(join(ROOT, 'envoy/envoy.yaml'), 'utf8'));
      expect(r.output).not.toMatch(/error/i);
      expect(r.ok).toBe(true);
    } finally {
      process.chdir(cwd);
    }
  });

  it('takes its filters from the demo manifest\'s filterChain: the guard module (the default form), named as the chain names it', () => {
    const text = renderLocalEnvoy();
    expect(localFilterChain().map((f) => [f.id, f.name])).toEqual([['guard', 'infergate-guard']]);
    // the demo manifest has no response cap: the guard build without the response-body callback
    expect(text).toContain('filename: build/filters/guard-no-response-body.wasm');
    expect(text).toContain('root_id: infergate-guard');
    expect(text).not.toContain('rate-limit.wasm');
  });

  it('with a manifest that has global quotas, the local Envoy passes envoy --mode validate: header filter first, ratelimit filters after the guard, the route\'s rate limits, the service\'s cluster', async () => {
    const example = join(ROOT, 'istio/example/infergate.yaml');
    const globalQuotas = localGlobalQuotas(example);
    expect(globalQuotas).not.toBeNull();
    const chain = localFilterChain(example);
    for (const f of chain) requireTool(join(ROOT, `build/filters/${f.module}.wasm`), 'run `make setup` to build the filters');
    const pki = makePki(join(ROOT, '.demo/pki'), WORKLOADS);
    const text = localBootstrap({ ports: FIXED_PORTS, tls: pki, moduleDir: join(ROOT, 'build/filters'), accessLog: '/dev/null', chain, globalQuotas });
    const hcm = parse(text).static_resources.listeners[0].filter_chains[0].filters[0].typed_config;
    const names = hcm.http_filters.map((f: any) => (f.name === 'envoy.filters.http.wasm' ? f.typed_config.config.name : f.name));
    expect(names).toEqual(['infergate-ratelimit-headers', 'envoy.filters.http.ext_authz', 'infergate-guard', 'infergate-global-quotas-deny', 'infergate-global-quotas-allow', 'envoy.filters.http.router']);
    expect(hcm.route_config.virtual_hosts[0].routes[0].route.rate_limits).toHaveLength(3);
    expect(text).toContain(`port_value: ${FIXED_PORTS.rateLimit}`);
    const r = await validateEnvoyConfig(text);
    expect(r.output).not.toMatch(/error/i);
    expect(r.ok).toBe(true);
    // Without the service's port there is nothing to call: an error, not a stack that silently skips its quotas.
    expect(() => localBootstrap({ ports: { ...FIXED_PORTS, rateLimit: undefined }, tls: pki, moduleDir: 'build/filters', accessLog: '/dev/null', chain, globalQuotas }))
      .toThrow('the manifest has globalQuotas: the local stack needs ports.rateLimit, the gRPC port of the running rate-limit service (envoy/ratelimit-process.ts)');
  });

  it('envoy --mode validate does reject a broken configuration (so the check above means something)', async () => {
    const broken = renderLocalEnvoy().replace('failure_mode_allow: false', 'failure_mode_allow: "sometimes"');
    const r = await validateEnvoyConfig(broken);
    expect(r.ok).toBe(false);
  });
});
