import { asArray, isRecord, resourceId } from './resource-id.js';

/**
 * Where infergate's filters land. EnvoyFilter: every patch is on the
 * inbound side (SIDECAR_INBOUND) of the HTTP connection manager, and is one of
 *  - an HTTP_FILTER inserted right before the router (so after Istio's
 *    ext_authz): the wasm filters and the global-quota ratelimit filters;
 *    any other placement could run them before authorization or on
 *    outbound traffic;
 *  - the header filter of the global quotas, INSERT_FIRST: allowed there
 *    only as a header_mutation with response mutations alone, which reads
 *    and changes nothing on the way in;
 *  - an HTTP_ROUTE MERGE that adds rate_limits to the inbound routes and
 *    nothing else.
 * WasmPlugin: phase STATS (after Istio's authz filters), FAIL_CLOSE, and
 * server (inbound) mode.
 */

const HCM = 'envoy.filters.network.http_connection_manager';
const ROUTER = 'envoy.filters.http.router';
const HEADER_MUTATION = 'type.googleapis.com/envoy.extensions.filters.http.header_mutation.v3.HeaderMutation';

function isHeaderMutation(value: unknown): boolean {
  return isRecord(value) && isRecord(value.typed_config) && value.typed_config['@type'] === HEADER_MUTATION;
}

/** A header_mutation filter that only touches responses. */
function responseOnlyHeaderFilter(value: unknown): boolean {
  const tc = isRecord(value) && isRecord(value.typed_config) ? value.typed_config : {};
  const mutations = isRecord(tc.mutations) ? tc.mutations : {};
  return Object.keys(tc).every((k) => k === '@type' || k === 'mutations') && Object.keys(mutations).every((k) => k === 'response_mutations');
}

/** An HTTP_ROUTE MERGE value that sets only the route action's rate_limits. */
function rateLimitsOnly(value: unknown): boolean {
  if (!isRecord(value) || Object.keys(value).length !== 1 || !isRecord(value.route)) return false;
  return Object.keys(value.route).length === 1 && Array.isArray(value.route.rate_limits);
}

export function envoyFilterErrors(r: unknown): string[] {
  if (!isRecord(r) || r.kind !== 'EnvoyFilter') return [];
  const id = resourceId(r);
  const spec = isRecord(r.spec) ? r.spec : {};
  const patches = asArray(spec.configPatches);
  if (patches.length === 0) return [`${id}: no configPatches`];
  const errors: string[] = [];
  patches.forEach((p, i) => {
    const at = `${id}: configPatches[${i}]`;
    const patch = isRecord(p) ? p : {};
    const match = isRecord(patch.match) ? patch.match : {};
    const filter = isRecord(match.listener) && isRecord(match.listener.filterChain) && isRecord(match.listener.filterChain.filter) ? match.listener.filterChain.filter : {};
    const sub = isRecord(filter.subFilter) ? filter.subFilter : {};
    const op = isRecord(patch.patch) ? patch.patch.operation : undefined;
    const value = isRecord(patch.patch) ? patch.patch.value : undefined;
    if (match.context !== 'SIDECAR_INBOUND') errors.push(`${at}: match.context must be SIDECAR_INBOUND, got ${String(match.context)}`);
    if (patch.applyTo === 'HTTP_ROUTE') {
      if (op !== 'MERGE' || !rateLimitsOnly(value)) errors.push(`${at}: an HTTP_ROUTE patch may only MERGE route.rate_limits, got ${String(op)} ${JSON.stringify(value)}`);
      return;
    }
    if (patch.applyTo !== 'HTTP_FILTER') errors.push(`${at}: applyTo must be HTTP_FILTER or HTTP_ROUTE, got ${String(patch.applyTo)}`);
    if (filter.name !== HCM) errors.push(`${at}: must match the filter ${HCM}`);
    if (op === 'INSERT_FIRST' && isHeaderMutation(value)) {
      if (!responseOnlyHeaderFilter(value)) errors.push(`${at}: a header_mutation filter may go first only with response mutations alone: it would change requests before ext_authz`);
      return;
    }
    if (op !== 'INSERT_BEFORE' || sub.name !== ROUTER) {
      errors.push(`${at}: must be INSERT_BEFORE ${ROUTER} (after ext_authz), got ${String(op)} ${String(sub.name)}`);
    }
  });
  return errors;
}

export function wasmPluginErrors(r: unknown): string[] {
  if (!isRecord(r) || r.kind !== 'WasmPlugin') return [];
  const id = resourceId(r);
  const spec = isRecord(r.spec) ? r.spec : {};
  const errors: string[] = [];
  if (spec.phase !== 'STATS') errors.push(`${id}: phase must be STATS (after Istio's authorization), got ${String(spec.phase)}`);
  if (spec.failStrategy !== 'FAIL_CLOSE') errors.push(`${id}: failStrategy must be FAIL_CLOSE, got ${String(spec.failStrategy)}`);
  const modes = asArray(spec.match).map((m) => (isRecord(m) ? m.mode : undefined));
  if (modes.length === 0 || modes.some((m) => m !== 'SERVER')) errors.push(`${id}: match must be mode SERVER (inbound only)`);
  if (!isRecord(spec.pluginConfig)) errors.push(`${id}: pluginConfig is required`);
  return errors;
}
