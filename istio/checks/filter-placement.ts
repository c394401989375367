import { asArray, isRecord, resourceId } from './resource-id.js';

/**
 * Where the wasm filters land. EnvoyFilter: every patch is an HTTP_FILTER
 * inserted right before the router of the inbound HTTP connection manager
 * (so after Istio's ext_authz); any other placement could run them before
 * authorization or on outbound traffic. WasmPlugin: phase STATS (after
 * Istio's authz filters), FAIL_CLOSE, and server (inbound) mode.
 */

const HCM = 'envoy.filters.network.http_connection_manager';
const ROUTER = 'envoy.filters.http.router';

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
    if (patch.applyTo !== 'HTTP_FILTER') errors.push(`${at}: applyTo must be HTTP_FILTER, got ${String(patch.applyTo)}`);
    if (match.context !== 'SIDECAR_INBOUND') errors.push(`${at}: match.context must be SIDECAR_INBOUND, got ${String(match.context)}`);
    if (filter.name !== HCM) errors.push(`${at}: must match the filter ${HCM}`);
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
