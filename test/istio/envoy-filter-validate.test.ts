import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { RATE_LIMIT_CLUSTER, renderBootstrap, type GlobalRateLimit } from '../../envoy/bootstrap.js';
import { renderFiles } from '../../istio/render/render.js';
import { validateEnvoyConfig } from '../helpers/envoy.js';
import { makePki } from '../helpers/pki.js';
import type { RenderInput } from '../../istio/render/load-input.js';
import { builtFilter, FILTERS } from '../filters/built.js';
import { exampleInput, separateInput } from './helpers/example.js';

/**
 * The HTTP filters the EnvoyFilter patches insert, checked by the real Envoy:
 * placed after ext_authz and before the router in a bootstrap like the
 * sidecar's inbound chain, with the module paths pointed at the built files.
 * Validate mode loads the modules and runs their on_configure, so this also
 * proves the real filters accept the rendered configuration strings, in the
 * guard form (the default) and the separate form.
 */

const tmp = mkdtempSync(join(tmpdir(), 'infergate-ef-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** The patch values of the first workload's EnvoyFilter, each module path pointed at the built file of the module it names. */
function patchValues(input: RenderInput = exampleInput()): Array<Record<string, any>> {
  const filters = renderFiles(input).find((f) => f.name === 'envoy-filters.yaml')!.documents as Array<{ spec: { configPatches: Array<{ patch: { value: Record<string, any> } }> } }>;
  const values = structuredClone(filters[0]!.spec.configPatches.map((p) => p.patch.value));
  for (const v of values) {
    const code = v.typed_config.config.vm_config.code.local;
    const id = code.filename.match(/\/([^/]+)\.wasm$/)[1];
    expect(FILTERS).toContain(id);
    code.filename = builtFilter(id);
  }
  return values;
}

function bootstrap(httpFilters: object[], globalRateLimit?: GlobalRateLimit): string {
  const pki = makePki(join(tmp, 'pki'), { gateway: 'spiffe://cluster.local/ns/gateway/sa/api-gateway' });
  return renderBootstrap({
    listenerPort: 0,
    tls: pki,
    extAuthz: { host: '127.0.0.1', port: 9191 },
    httpFilters,
    upstream: { host: '127.0.0.1', port: 8080 },
    ...(globalRateLimit ? { globalRateLimit } : {}),
  });
}

/**
 * The first workload's global-quotas EnvoyFilter as the sidecar would run it: the INSERT_FIRST
 * header filter, the ratelimit filters (their Istio cluster name pointed at the bootstrap's
 * cluster for the service) and the HTTP_ROUTE patch's rate limits on the route.
 */
function quotaPatches(input: RenderInput = exampleInput()): GlobalRateLimit {
  const ef = (renderFiles(input).find((f) => f.name === 'global-quotas.yaml')!.documents as Array<{ spec: { configPatches: any[] } }>)[0]!;
  const patches = structuredClone(ef.spec.configPatches);
  const first = patches.filter((p) => p.patch.operation === 'INSERT_FIRST').map((p) => p.patch.value);
  const filters = patches.filter((p) => p.patch.operation === 'INSERT_BEFORE').map((p) => p.patch.value);
  for (const f of filters) f.typed_config.rate_limit_service.grpc_service.envoy_grpc.cluster_name = RATE_LIMIT_CLUSTER;
  const rateLimits = patches.filter((p) => p.applyTo === 'HTTP_ROUTE').flatMap((p) => p.patch.value.route.rate_limits);
  expect([first.length, filters.length, rateLimits.length]).toEqual([1, 2, 3]);
  return { service: { host: '127.0.0.1', port: 8081 }, firstFilters: first, filters, rateLimits };
}

describe('EnvoyFilter patch values in the real Envoy', () => {
  it.each([
    ['guard form (the default)', () => exampleInput(), ['infergate-guard']],
    ['separate form', () => separateInput(), ['infergate-rate-limit', 'infergate-payload-limit']],
  ] as const)('%s: pass envoy --mode validate after ext_authz, before the router', async (_form, input, names) => {
    const values = patchValues(input());
    expect(values.map((v) => v.name)).toEqual(names);
    const r = await validateEnvoyConfig(bootstrap(values));
    expect(r.output).not.toMatch(/error/i);
    expect(r.ok).toBe(true);
  }, 60_000);

  it('the global quotas\' patch values (header filter, ratelimit filters, route rate limits) pass envoy --mode validate with the guard', async () => {
    const r = await validateEnvoyConfig(bootstrap(patchValues(), quotaPatches()));
    expect(r.output).not.toMatch(/error/i);
    expect(r.ok).toBe(true);
  }, 60_000);

  it('a misspelt field in a global-quota patch, or an unknown action, is rejected', async () => {
    const misspelt = quotaPatches();
    (misspelt.filters[0] as any).typed_config.failure_mode_dny = true;
    expect((await validateEnvoyConfig(bootstrap(patchValues(), misspelt))).ok).toBe(false);
    const action = quotaPatches();
    (action.rateLimits[0] as any).actions[1] = { request_header: { header_name: 'x-infergate-tenant', descriptor_key: 'tenant' } };
    expect((await validateEnvoyConfig(bootstrap(patchValues(), action))).ok).toBe(false);
  }, 60_000);

  it('a misspelt field in a patch value is rejected (the check can fail)', async () => {
    const values = patchValues();
    values[0]!.typed_config.config.fail_opn = false;
    const r = await validateEnvoyConfig(bootstrap(values));
    expect(r.ok).toBe(false);
  }, 60_000);

  it('a configuration the filter rejects fails validation too: Envoy runs on_configure', async () => {
    const values = patchValues();
    values[0]!.typed_config.config.configuration.value = JSON.stringify({ payloadLimit: { defaultMaxBytes: 1, maxBytes: 2 } });
    const r = await validateEnvoyConfig(bootstrap(values));
    expect(r.output).toContain('guard: rejecting configuration: configuration.payloadLimit: unknown key "maxBytes"');
    expect(r.ok).toBe(false);
  }, 60_000);

  it('the same in the separate form, for the module that rejects', async () => {
    const values = patchValues(separateInput());
    values[1]!.typed_config.config.configuration.value = JSON.stringify({ defaultMaxBytes: 1, maxBytes: 2 });
    const r = await validateEnvoyConfig(bootstrap(values));
    expect(r.output).toContain('payload-limit: rejecting configuration: configuration: unknown key "maxBytes"');
    expect(r.ok).toBe(false);
  }, 60_000);
});
