import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { renderBootstrap } from '../../envoy/bootstrap.js';
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

function bootstrap(httpFilters: object[]): string {
  const pki = makePki(join(tmp, 'pki'), { gateway: 'spiffe://cluster.local/ns/gateway/sa/api-gateway' });
  return renderBootstrap({
    listenerPort: 0,
    tls: pki,
    extAuthz: { host: '127.0.0.1', port: 9191 },
    httpFilters,
    upstream: { host: '127.0.0.1', port: 8080 },
  });
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
