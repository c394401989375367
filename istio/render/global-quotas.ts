import { stringify } from 'yaml';
import { HEADER } from '../../ext-authz/src/check-response.js';
import type { Budget, FailureMode, GlobalQuotas } from './global-quotas-schema.js';
import { pathRegex } from './path-regex.js';

/**
 * Global quotas as Envoy and envoyproxy/ratelimit configuration: pure
 * functions, shared by `infergate render` (Istio), the local Envoy
 * (envoy/local-stack.ts) and the tests.
 *
 * One domain, `infergate`. Each budget is one descriptor:
 *   [budget=<name>]               per route: one bucket for the budget
 *   [budget=<name>, <per>=<value>] per tenant / tier / caller: one bucket each
 * The value comes from the header ext_authz sets on every request it allows
 * and strips from clients (x-infergate-tenant, -tier, -caller:
 * ext-authz/src/check-response.ts); nothing a client controls. A missing
 * header skips the descriptor, so workload traffic never counts against a
 * tenant budget. The budget entry itself is a header_value_match on the
 * budget's filters (tiers, tenants, callers, `:path`), so a request no budget
 * applies to sends no descriptor, and Envoy makes no call at all for it.
 *
 * Envoy's header matchers are ANDed, so a filter with several values becomes
 * several rate-limit rules for the same descriptor, one per combination; for
 * callers and paths, whose patterns can overlap, each rule also excludes the
 * earlier patterns, so a request fires exactly one rule per budget and is
 * counted once.
 *
 * Failure modes: deny budgets (the default) go to stage 0 and a ratelimit
 * filter with failure_mode_deny; allow budgets to stage 1 and a filter that
 * lets requests through when the service cannot answer. Both filters sit
 * after ext_authz and the guard, before the router.
 */

export const DOMAIN = 'infergate';
export const BUDGET_KEY = 'budget';
export const STAGE: Record<FailureMode, number> = { deny: 0, allow: 1 };
/** The filters in the order they run: deny budgets first, so a service outage fails fast. */
export const QUOTA_FILTER: Record<FailureMode, string> = { deny: 'infergate-global-quotas-deny', allow: 'infergate-global-quotas-allow' };
export const HEADER_FILTER = 'infergate-ratelimit-headers';
/** Each filter's stats: cluster.<route's cluster>.ratelimit.<prefix>.{ok,over_limit,error,failure_mode_allowed}. */
export const GLOBAL_QUOTA_STAT_PREFIXES = (['deny', 'allow'] as const).map((m) => QUOTA_FILTER[m].replace(/-/g, '_'));
/** Where each budget key comes from: headers only ext_authz sets (it removes client copies). */
export const KEY_HEADER = { tenant: HEADER.tenant, tier: HEADER.tier, caller: HEADER.caller } as const;
/** The only request headers a rate-limit action may read; :path only for the paths filter. */
export const VERIFIED_HEADERS: readonly string[] = [HEADER.tenant, HEADER.tier, HEADER.caller, HEADER.quota];
export const RATE_LIMIT_HEADERS = ['x-ratelimit-limit', 'x-ratelimit-remaining', 'x-ratelimit-reset'] as const;

export const RATE_LIMIT_TYPE = 'type.googleapis.com/envoy.extensions.filters.http.ratelimit.v3.RateLimit';
export const HEADER_MUTATION_TYPE = 'type.googleapis.com/envoy.extensions.filters.http.header_mutation.v3.HeaderMutation';

/** The service's configuration: one descriptor per budget (envoyproxy/ratelimit's YAML format). */
export function rateLimitServiceConfig(q: GlobalQuotas): { domain: string; descriptors: object[] } {
  return {
    domain: DOMAIN,
    descriptors: q.budgets.map((b) => {
      const rate_limit = { unit: b.limit.unit, requests_per_unit: b.limit.requests };
      return b.per === 'route'
        ? { key: BUDGET_KEY, value: b.name, rate_limit }
        : { key: BUDGET_KEY, value: b.name, descriptors: [{ key: b.per, rate_limit }] };
    }),
  };
}

/**
 * The text the service loads (the ConfigMap's value, and envoy/ratelimit-process.ts's config).
 * YAML 1.1 quoting, as the service's Go YAML reads `no` or `on` as a boolean: budget names are DNS labels, and `no` is one.
 */
export function rateLimitServiceYaml(q: GlobalQuotas): string {
  return stringify(rateLimitServiceConfig(q), { lineWidth: 0, version: '1.1' });
}

type Matcher = Record<string, unknown>;

function exact(name: string, value: string): Matcher {
  return { name, string_match: { exact: value } };
}

function callerMatcher(pattern: string): Matcher {
  // The manifest's prefix pattern spiffe://td/ns/batch/* keeps its trailing slash.
  return pattern.endsWith('/*') ? { name: HEADER.caller, string_match: { prefix: pattern.slice(0, -1) } } : exact(HEADER.caller, pattern);
}

function pathMatcher(glob: string): Matcher {
  return { name: ':path', string_match: { safe_regex: { regex: pathRegex(glob) } } };
}

/** One matcher list per pattern: the pattern, and not any earlier one (so overlapping patterns count a request once). */
function exclusive(patterns: readonly string[], matcher: (p: string) => Matcher): Matcher[][] {
  return patterns.map((p, i) => [matcher(p), ...patterns.slice(0, i).map((q) => ({ ...matcher(q), invert_match: true }))]);
}

/** The budget's filters as header-matcher lists, one per rule (their product); [[]] without filters. */
export function budgetMatchers(b: Budget): Matcher[][] {
  const dimensions: Matcher[][][] = [];
  if (b.tiers) dimensions.push(b.tiers.map((t) => [exact(HEADER.tier, t)]));
  if (b.tenants) dimensions.push(b.tenants.map((t) => [exact(HEADER.tenant, t)]));
  if (b.callers) dimensions.push(exclusive(b.callers, callerMatcher));
  if (b.paths) dimensions.push(exclusive(b.paths, pathMatcher));
  return dimensions.reduce<Matcher[][]>((rules, options) => rules.flatMap((r) => options.map((o) => [...r, ...o])), [[]]);
}

/** The route's rate_limits: every budget's rules, each on its failure mode's stage. */
export function quotaRateLimits(q: GlobalQuotas): object[] {
  return q.budgets.flatMap((b) =>
    budgetMatchers(b).map((headers) => ({
      stage: STAGE[b.failureMode],
      actions: [
        headers.length === 0
          ? { generic_key: { descriptor_key: BUDGET_KEY, descriptor_value: b.name } }
          : { header_value_match: { descriptor_key: BUDGET_KEY, descriptor_value: b.name, expect_match: true, headers } },
        ...(b.per === 'route' ? [] : [{ request_headers: { header_name: KEY_HEADER[b.per], descriptor_key: b.per } }]),
      ],
    })),
  );
}

/** The failure modes in use, in filter order. */
export function quotaModes(q: GlobalQuotas): FailureMode[] {
  return (['deny', 'allow'] as const).filter((m) => q.budgets.some((b) => b.failureMode === m));
}

/**
 * The ratelimit filters calling the service at `cluster` (a gRPC cluster),
 * one per failure mode in use. On a 429 they set x-ratelimit-limit,
 * -remaining and -reset from the service's answer (draft 03 of the IETF
 * RateLimit header fields, the one Envoy implements) and retry-after from
 * the reset; on an allowed response the same three headers. gRPC callers
 * get RESOURCE_EXHAUSTED, as from the guard. A service that cannot answer
 * gives 503 in the deny filter.
 */
export function quotaFilters(q: GlobalQuotas, cluster: string): object[] {
  return quotaModes(q).map((mode) => ({
    name: QUOTA_FILTER[mode],
    typed_config: {
      '@type': RATE_LIMIT_TYPE,
      domain: DOMAIN,
      stage: STAGE[mode],
      failure_mode_deny: mode === 'deny',
      timeout: q.timeout,
      stat_prefix: GLOBAL_QUOTA_STAT_PREFIXES[STAGE[mode]],
      enable_x_ratelimit_headers: 'DRAFT_VERSION_03',
      rate_limited_as_resource_exhausted: true,
      status_on_error: { code: 'ServiceUnavailable' },
      // Only on this filter's own 429: the seconds until the refusing budget's window resets.
      response_headers_to_add: [{ header: { key: 'retry-after', value: '%RESP(x-ratelimit-reset)%' }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' }],
      rate_limit_service: { transport_api_version: 'V3', grpc_service: { envoy_grpc: { cluster_name: cluster } } },
    },
  }));
}

/**
 * Every limiter in the chain (the guard, each ratelimit filter) appends its
 * own x-ratelimit-* headers, and the guard's also land on the ratelimit
 * filters' 429s. This filter runs first in the chain, so it sees each
 * response last, and keeps one value of each header: the first, which is
 * the limiter nearest the router that spoke (on a 429, the one that
 * refused; on an allowed response, a global budget over the guard's
 * per-second burst).
 */
export function rateLimitHeaderFilter(): object {
  return {
    name: HEADER_FILTER,
    typed_config: {
      '@type': HEADER_MUTATION_TYPE,
      mutations: {
        response_mutations: RATE_LIMIT_HEADERS.map((h) => ({ append: { header: { key: h, value: `%RESP(${h})%` }, append_action: 'OVERWRITE_IF_EXISTS' } })),
      },
    },
  };
}
