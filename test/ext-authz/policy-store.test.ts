import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Authorizer } from '../../ext-authz/src/authorizer.js';
import { DecisionCache } from '../../ext-authz/src/decision-cache.js';
import type { PolicyDecision } from '../../ext-authz/src/decision.js';
import { Metrics } from '../../ext-authz/src/metrics.js';
import { PolicyStore } from '../../ext-authz/src/policy-store.js';
import { httpCheck } from '../helpers/authz-client.js';
import { EXAMPLE_MANIFEST, requireBundle } from '../helpers/paths.js';

const STRANGER = 'spiffe://cluster.local/ns/web/sa/frontend';
const allowStranger = (base: string) => `${base}  - name: frontend\n    callers: [${STRANGER}]\n`;

describe('policy store (load, reload, keep last good)', () => {
  let dir: string;
  let manifest: string;
  let bundle: string;
  let metrics: Metrics;
  let store: PolicyStore;
  let swaps: number;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'infergate-store-'));
    manifest = join(dir, 'manifest.yaml');
    bundle = join(dir, 'bundle.tar.gz');
    copyFileSync(EXAMPLE_MANIFEST, manifest);
    copyFileSync(requireBundle(), bundle);
    metrics = new Metrics();
    swaps = 0;
    store = new PolicyStore({ bundlePath: bundle, manifestPath: manifest, log: pino({ level: 'silent' }), metrics, onSwap: () => swaps++ });
    await store.load();
  });
  afterEach(() => {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('does nothing when the files did not change', async () => {
    const rev = store.current()!.revision;
    expect(await store.reload()).toBe(false);
    expect(store.current()!.revision).toBe(rev);
    expect(swaps).toBe(1);
  });

  it('keeps the last good policy when the bundle is replaced by garbage, and counts it', async () => {
    const rev = store.current()!.revision;
    writeFileSync(bundle, 'not a bundle');
    expect(await store.reload()).toBe(false);
    expect(store.current()!.revision).toBe(rev);
    const text = await metrics.registry.metrics();
    expect(text).toContain('infergate_policy_reload_errors_total{source="bundle"} 1');
    expect(text).toContain('infergate_policy_last_reload_success 0');
  });

  it('judges and counts one bad edit once, however often the watch and the poll report it', async () => {
    writeFileSync(manifest, 'trustDomains: [cluster.local]\nrules: []\nbogus: 1\n');
    for (let i = 0; i < 3; i++) expect(await store.reload()).toBe(false);
    const text = await metrics.registry.metrics();
    expect(text).toContain('infergate_policy_reload_errors_total{source="manifest"} 1');
    expect(text).toContain('infergate_policy_last_reload_success 0');
  });

  it('reports success again when a bad edit is reverted to the policy in force', async () => {
    const rev = store.current()!.revision;
    writeFileSync(manifest, 'trustDomains: []\nrules: []\n');
    await store.reload();
    copyFileSync(EXAMPLE_MANIFEST, manifest);
    expect(await store.reload()).toBe(false);
    expect(store.current()!.revision).toBe(rev);
    expect(await metrics.registry.metrics()).toContain('infergate_policy_last_reload_success 1');
  });

  it('recovers when a good manifest follows a bad one', async () => {
    writeFileSync(manifest, 'trustDomains: []\nrules: []\n');
    expect(await store.reload()).toBe(false);
    writeFileSync(manifest, allowStranger(readFileSync(EXAMPLE_MANIFEST, 'utf8')));
    expect(await store.reload()).toBe(true);
    expect(await metrics.registry.metrics()).toContain('infergate_policy_last_reload_success 1');
  });

  it('never lets a request see half of a reload: every decision matches the revision that made it', async () => {
    const base = readFileSync(EXAMPLE_MANIFEST, 'utf8');
    const authorizer = new Authorizer(store.current, new DecisionCache<PolicyDecision>({ max: 0, ttlMs: 1, jitter: 0 }), { trustXfcc: false, inputHeaders: [] });
    const allowedIn = new Map<string, boolean>();
    allowedIn.set(store.current()!.revision, false);
    const seen: Array<{ revision: string; allowed: boolean }> = [];
    let running = true;
    const traffic = (async () => {
      while (running) {
        const v = await authorizer.check(httpCheck(STRANGER, 'GET', '/v1/models/x'));
        expect(['allowed', 'no_matching_rule']).toContain(v.code);
        seen.push({ revision: v.revision!, allowed: v.allowed });
        await new Promise((r) => setImmediate(r));
      }
    })();
    for (let i = 0; i < 6; i++) {
      const allow = i % 2 === 0;
      writeFileSync(manifest, allow ? allowStranger(base) : base + `# edit ${i}\n`);
      await store.reload();
      allowedIn.set(store.current()!.revision, allow);
    }
    running = false;
    await traffic;
    expect(seen.length).toBeGreaterThan(6);
    for (const s of seen) expect(s.allowed).toBe(allowedIn.get(s.revision));
    expect(new Set(seen.map((s) => s.revision)).size).toBeGreaterThan(2);
  });
});
