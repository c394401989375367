import { asArray, isRecord, resourceId } from './resource-id.js';

/**
 * The global quotas' EnvoyFilters, beyond their placement
 * (filter-placement.ts):
 *  - every rate-limit action reads only what ext_authz verified: the budget
 *    name (generic_key), the x-infergate-* headers the server sets and
 *    strips from clients, and `:path` in a header_value_match. Anything else
 *    (a client's header, remote_address, metadata) would let a caller pick
 *    whose budget it spends; skip_if_absent would make a missing header a
 *    bucket shared by everyone without one;
 *  - each stage a route rate limit uses has a ratelimit filter on that
 *    stage in the same EnvoyFilter (or its budgets are never enforced), and
 *    the stage-0 filter, which holds the fail-closed budgets, fails closed;
 *  - each ratelimit filter has a timeout (Envoy's default is 20ms), the
 *    draft-03 x-ratelimit headers, domain infergate, and calls a rendered
 *    Service's cluster (an unknown cluster fails every call);
 *  - the EnvoyFilter is applied after the guard's EnvoyFilter of the same
 *    workload (higher priority), so its INSERT_BEFORE router lands after the
 *    guard, which stays the cheap first line.
 */

const RATE_LIMIT = 'type.googleapis.com/envoy.extensions.filters.http.ratelimit.v3.RateLimit';
const WASM = 'type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm';
const VERIFIED = new Set(['x-infergate-tenant', 'x-infergate-tier', 'x-infergate-caller', 'x-infergate-quota']);
const DOMAIN = 'infergate';

interface Patch {
  at: string;
  applyTo: unknown;
  value: Record<string, unknown>;
}

function patchesOf(r: Record<string, unknown>): Patch[] {
  const spec = isRecord(r.spec) ? r.spec : {};
  return asArray(spec.configPatches).map((p, i) => {
    const patch = isRecord(p) ? p : {};
    const inner = isRecord(patch.patch) ? patch.patch : {};
    return { at: `${resourceId(r)}: configPatches[${i}]`, applyTo: patch.applyTo, value: isRecord(inner.value) ? inner.value : {} };
  });
}

function typedConfig(value: Record<string, unknown>): Record<string, unknown> {
  return isRecord(value.typed_config) ? value.typed_config : {};
}

function actionErrors(at: string, action: unknown): string[] {
  if (!isRecord(action)) return [`${at}: not an action`];
  const [kind, ...more] = Object.keys(action);
  if (more.length > 0) return [`${at}: one action per entry, got ${Object.keys(action).join(', ')}`];
  const body = isRecord(action[kind!]) ? (action[kind!] as Record<string, unknown>) : {};
  switch (kind) {
    case 'generic_key':
      return [];
    case 'request_headers': {
      const name = String(body.header_name).toLowerCase();
      if (!VERIFIED.has(name)) return [`${at}: request_headers reads "${name}", which a client controls: use the x-infergate-* headers ext_authz sets`];
      if (body.skip_if_absent === true) return [`${at}: request_headers skip_if_absent would put everyone without "${name}" in one bucket`];
      return [];
    }
    case 'header_value_match':
      return asArray(body.headers).flatMap((h) => {
        const name = isRecord(h) ? String(h.name).toLowerCase() : '?';
        return VERIFIED.has(name) || name === ':path' ? [] : [`${at}: header_value_match reads "${name}", which a client controls: match only x-infergate-* headers and :path`];
      });
    default:
      return [`${at}: ${String(kind)} is not an action on what ext_authz verified (use generic_key, request_headers or header_value_match on x-infergate-* headers and :path)`];
  }
}

function envoyFilterQuotaErrors(r: Record<string, unknown>, services: Map<string, Set<number>>): string[] {
  const errors: string[] = [];
  const patches = patchesOf(r);
  const filterStages = new Map<number, boolean>();
  for (const p of patches) {
    const tc = typedConfig(p.value);
    if (p.applyTo !== 'HTTP_FILTER' || tc['@type'] !== RATE_LIMIT) continue;
    const stage = typeof tc.stage === 'number' ? tc.stage : 0;
    const deny = tc.failure_mode_deny === true;
    filterStages.set(stage, deny);
    if (stage === 0 && !deny) errors.push(`${p.at}: the stage-0 ratelimit filter holds the fail-closed budgets and must set failure_mode_deny: true`);
    if (tc.domain !== DOMAIN) errors.push(`${p.at}: domain must be "${DOMAIN}", the one the rate-limit service's configuration has, got ${JSON.stringify(tc.domain)}`);
    if (typeof tc.timeout !== 'string') errors.push(`${p.at}: needs a timeout (Envoy's default, 20ms, fails calls under load)`);
    if (tc.enable_x_ratelimit_headers !== 'DRAFT_VERSION_03') errors.push(`${p.at}: enable_x_ratelimit_headers must be DRAFT_VERSION_03, so 429s say the limit and when it resets`);
    const service = isRecord(tc.rate_limit_service) && isRecord(tc.rate_limit_service.grpc_service) ? tc.rate_limit_service.grpc_service : {};
    const cluster = isRecord(service.envoy_grpc) ? String(service.envoy_grpc.cluster_name) : '';
    const m = /^outbound\|(\d+)\|\|(.+)$/.exec(cluster);
    if (m === null || !services.get(m[2]!)?.has(Number(m[1]))) {
      errors.push(`${p.at}: calls cluster "${cluster}", which is no rendered Service's port (outbound|<port>||<name>.<namespace>.svc.cluster.local)`);
    }
  }
  for (const p of patches) {
    if (p.applyTo !== 'HTTP_ROUTE') continue;
    const route = isRecord(p.value.route) ? p.value.route : {};
    asArray(route.rate_limits).forEach((rl, i) => {
      const at = `${p.at}: rate_limits[${i}]`;
      const entry = isRecord(rl) ? rl : {};
      const stage = typeof entry.stage === 'number' ? entry.stage : 0;
      if (!filterStages.has(stage)) errors.push(`${at}: stage ${stage} has no ratelimit filter in this EnvoyFilter, so its budget is never enforced`);
      const actions = asArray(entry.actions);
      if (actions.length === 0) errors.push(`${at}: no actions`);
      actions.forEach((a, j) => errors.push(...actionErrors(`${at}.actions[${j}]`, a)));
    });
  }
  return errors;
}

function selectorKey(r: Record<string, unknown>): string {
  const ns = isRecord(r.metadata) ? String(r.metadata.namespace) : '';
  const spec = isRecord(r.spec) ? r.spec : {};
  const sel = isRecord(spec.workloadSelector) ? spec.workloadSelector.labels : undefined;
  return `${ns} ${JSON.stringify(sel ?? {})}`;
}

function hasPatchOf(r: Record<string, unknown>, type: string): boolean {
  return patchesOf(r).some((p) => p.applyTo === 'HTTP_FILTER' && typedConfig(p.value)['@type'] === type);
}

function priorityOf(r: Record<string, unknown>): number {
  const spec = isRecord(r.spec) ? r.spec : {};
  return typeof spec.priority === 'number' ? spec.priority : 0;
}

export function globalQuotaErrors(resources: readonly unknown[]): string[] {
  const services = new Map<string, Set<number>>();
  for (const r of resources) {
    if (!isRecord(r) || r.kind !== 'Service' || !isRecord(r.metadata)) continue;
    const spec = isRecord(r.spec) ? r.spec : {};
    const ports = new Set(asArray(spec.ports).map((p) => (isRecord(p) ? Number(p.port) : NaN)));
    services.set(`${String(r.metadata.name)}.${String(r.metadata.namespace)}.svc.cluster.local`, ports);
  }
  const filters = resources.filter((r): r is Record<string, unknown> => isRecord(r) && r.kind === 'EnvoyFilter');
  const errors = filters.flatMap((r) => envoyFilterQuotaErrors(r, services));
  for (const quota of filters.filter((r) => hasPatchOf(r, RATE_LIMIT))) {
    for (const guard of filters.filter((g) => g !== quota && hasPatchOf(g, WASM) && selectorKey(g) === selectorKey(quota))) {
      if (priorityOf(guard) >= priorityOf(quota)) {
        errors.push(`${resourceId(quota)}: priority ${priorityOf(quota)} must be above ${resourceId(guard)}'s ${priorityOf(guard)}, or its ratelimit filters land before the guard`);
      }
    }
  }
  return errors;
}
