/**
 * What every row of the demo scene (demo/scene.ts) must get, as [caller, end
 * user, status, reason]: asserted against the local stack (test/e2e/demo.test.ts)
 * and, but for the two-replica rows, against the compose stack in Docker
 * (test/docker), which runs one Envoy and no rate-limit service.
 */
const premium = 'acme (premium)';
const free = 'globex (free)';
const metered = 'initech (premium)';

type Rows = ReadonlyArray<readonly [string, string, number, string]>;

/** The rows one Envoy plays (demo/scene.ts SINGLE_ENVOY_STEPS). */
export const EXPECTED_SINGLE_ENVOY_ROWS: Rows = [
  ['api-gateway', premium, 200, 'allowed'],
  ['api-gateway', premium, 200, 'allowed'],
  ['web-frontend', '-', 403, 'no_matching_rule'],
  ['compromised', '-', 403, 'quarantined'],
  ['foreign-agent', '-', 403, 'foreign_trust_domain'],
  ['api-gateway', premium, 403, 'invalid_path'],
  ['api-gateway', premium, 403, 'denied_by_rule'],
  ['api-gateway', premium, 403, 'invalid_path'],
  ['api-gateway', premium, 413, 'payload_too_large'],
  ...Array.from({ length: 5 }, () => ['batch-scorer', '-', 200, 'allowed'] as const),
  ...Array.from({ length: 3 }, () => ['batch-scorer', '-', 429, 'rate_limited'] as const),
  // Tenants and tiers: the free tier's models, its per-tenant budget, the premium tenant untouched by it.
  ['api-gateway', free, 403, 'tier_forbids'],
  ...Array.from({ length: 3 }, () => ['api-gateway', free, 200, 'allowed'] as const),
  ...Array.from({ length: 2 }, () => ['api-gateway', free, 429, 'rate_limited'] as const),
  ...Array.from({ length: 3 }, () => ['api-gateway', premium, 200, 'allowed'] as const),
  ['api-gateway', 'expired token', 401, 'token_expired'],
  ['web-frontend', premium, 403, 'not_delegated'],
  ['api-gateway', '-', 401, 'no_token'],
];

/** The whole scene: then two replicas sharing initech's global quota of 4, alternating, admit 4 in all. */
export const EXPECTED_DEMO_ROWS: Rows = [
  ...EXPECTED_SINGLE_ENVOY_ROWS,
  ...Array.from({ length: 4 }, () => ['api-gateway', metered, 200, 'allowed'] as const),
  ...Array.from({ length: 4 }, () => ['api-gateway', metered, 429, 'global_quota'] as const),
];
