import { describe, expect, it } from 'vitest';
import { localFilterChain } from '../../envoy/local-stack.js';
import { envoyFilter } from '../../istio/render/envoy-filters.js';
import { wasmPlugins } from '../../istio/render/wasm-plugins.js';
import { EXAMPLE_INPUT, exampleInput, separateInput, variantInput } from './helpers/example.js';

/**
 * Tier quotas (istio/render/tier-quotas.ts): each `tiers.<name>.rateLimit`
 * becomes a rate-limit rule `tenant/<name>/*`, after the operator's own
 * rules, in every rendering of the filters. The errors have their fixtures
 * in deployment-schema.test.ts; filter-config.test.ts runs the rules in the
 * built modules.
 */

const OPERATOR_RULES = [
  { match: 'workload/spiffe://cluster.local/ns/gateway/sa/api-gateway', perSecond: 500, burst: 1000 },
  { match: 'workload/spiffe://cluster.local/ns/batch/*', perSecond: 5, burst: 5 },
];
const TIER_RULES = [
  { match: 'tenant/free/*', perSecond: 1, burst: 5 },
  { match: 'tenant/premium/*', perSecond: 50, burst: 100 },
];

const callersOf = (rateLimit: unknown) => (rateLimit as { callers: unknown[] }).callers;

describe('tier quotas in the rendered rate limit', () => {
  it("adds a tenant/<tier>/* rule per tier quota after the operator's rules, in the WasmPlugin and the EnvoyFilter alike", () => {
    const d = exampleInput().deployment;
    expect(d.filters.rateLimit!.config.callers).toEqual([...OPERATOR_RULES, ...TIER_RULES]);
    const w = d.workloads[0]!;
    expect(callersOf((wasmPlugins(d, w)[0]!.spec as any).pluginConfig.rateLimit)).toEqual([...OPERATOR_RULES, ...TIER_RULES]);
    const value = (envoyFilter(d, w) as any).spec.configPatches[0].patch.value.typed_config.config.configuration.value;
    expect(callersOf(JSON.parse(value).rateLimit)).toEqual([...OPERATOR_RULES, ...TIER_RULES]);
  });

  it('puts them in the rate-limit module\'s own config in the separate form', () => {
    const d = separateInput().deployment;
    const [rl] = wasmPlugins(d, d.workloads[0]!);
    expect(rl!.spec).toMatchObject({ pluginName: 'infergate-rate-limit' });
    expect(callersOf((rl!.spec as any).pluginConfig)).toEqual([...OPERATOR_RULES, ...TIER_RULES]);
  });

  it("reaches the local stack's Envoy too, which takes its filters through the same loader", () => {
    const [guard] = localFilterChain(EXAMPLE_INPUT);
    expect(callersOf((guard!.config as { rateLimit: unknown }).rateLimit)).toEqual([...OPERATOR_RULES, ...TIER_RULES]);
  });

  it('adds nothing for a tier without a quota, which leaves the operator free to write that rule', () => {
    const own = { match: 'tenant/free/*', perSecond: 2, burst: 2 };
    const d = variantInput((x) => { x.filters.rateLimit.config.callers.push(own); }, (m) => { delete m.tiers.free.rateLimit; }).deployment;
    expect(d.filters.rateLimit!.config.callers).toEqual([...OPERATOR_RULES, own, TIER_RULES[1]]);
  });

  it('keeps an exact rule for one tenant of a tier (it wins over the tier\'s prefix rule in the filter)', () => {
    const acme = { match: 'tenant/premium/acme', perSecond: 200, burst: 400 };
    const d = variantInput((x) => { x.filters.rateLimit.config.callers.push(acme); }).deployment;
    expect(d.filters.rateLimit!.config.callers).toEqual([...OPERATOR_RULES, acme, ...TIER_RULES]);
  });

  it('reads the identity header name case-insensitively, as the filter does', () => {
    const d = variantInput((x) => { x.filters.rateLimit.config.identity = 'header:X-Infergate-Quota'; }).deployment;
    expect(d.filters.rateLimit!.config.callers).toEqual([...OPERATOR_RULES, ...TIER_RULES]);
  });

  it('leaves the rules as written without tier quotas', () => {
    // The example's free-tier global budget names a tier too.
    const noTiers = (m: Record<string, any>) => { delete m.tiers; delete m.rules[0].tiers; delete m.globalQuotas.budgets[0].tiers; };
    const d = variantInput(() => {}, noTiers).deployment;
    expect(d.filters.rateLimit!.config.callers).toEqual(OPERATOR_RULES);
    const noRules = variantInput((x) => { delete x.filters.rateLimit.config.callers; }, noTiers).deployment;
    expect(noRules.filters.rateLimit!.config).not.toHaveProperty('callers');
  });
});
