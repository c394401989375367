import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { renderLocalEnvoy } from '../../envoy/render-local.js';
import { validateEnvoyConfig } from '../helpers/envoy.js';
import { ROOT, requireTool } from '../helpers/paths.js';
import { makePki } from '../helpers/pki.js';
import { WORKLOADS, localFilterChain } from '../../envoy/local-stack.js';

describe('Envoy configurations the project ships', () => {
  it('envoy/envoy.yaml is exactly what render-local produces (regenerate: node dist/envoy/render-local.js)', () => {
    expect(readFileSync(join(ROOT, 'envoy/envoy.yaml'), 'utf8')).toBe(renderLocalEnvoy());
  });

  it('envoy/envoy.yaml passes envoy --mode validate with the real binary', async () => {
    // The config names the demo PKI and the built filters by relative path, as a user would run it.
    makePki(join(ROOT, '.demo/pki'), WORKLOADS);
    for (const f of localFilterChain()) requireTool(join(ROOT, `build/filters/${f.id}.wasm`), 'run `make setup` to build the filters');
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
    expect(text).toContain('filename: build/filters/guard.wasm');
    expect(text).toContain('root_id: infergate-guard');
    expect(text).not.toContain('rate-limit.wasm');
  });

  it('envoy --mode validate does reject a broken configuration (so the check above means something)', async () => {
    const broken = renderLocalEnvoy().replace('failure_mode_allow: false', 'failure_mode_allow: "sometimes"');
    const r = await validateEnvoyConfig(broken);
    expect(r.ok).toBe(false);
  });
});
