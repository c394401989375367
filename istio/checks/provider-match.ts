import { asArray, isRecord, resourceId } from './resource-id.js';

/**
 * Every CUSTOM policy names an extension provider that the mesh config
 * defines (an unknown provider makes istiod install a deny-all RBAC filter
 * instead), the provider is a gRPC ext_authz entry with only the fields Istio
 * knows and failOpen false, and no workload selector is claimed by two
 * different providers (Istio allows one provider per workload).
 */

const GRPC_FIELDS = new Set(['service', 'port', 'timeout', 'failOpen', 'clearRouteCache', 'statusOnError', 'includeRequestBodyInCheck']);

export function extensionProviders(meshConfigOverlay: unknown): Record<string, unknown>[] {
  const spec = isRecord(meshConfigOverlay) && isRecord(meshConfigOverlay.spec) ? meshConfigOverlay.spec : {};
  const mesh = isRecord(spec.meshConfig) ? spec.meshConfig : {};
  return asArray(mesh.extensionProviders).filter(isRecord);
}

const ACCESS_LOG_FIELDS = new Set(['path', 'logFormat']);

/** An Envoy file access-log provider: a path, and a log format of text or labels (Istio's MeshConfig API). */
function accessLogErrors(name: string, log: Record<string, unknown>): string[] {
  const errors: string[] = [];
  for (const k of Object.keys(log)) if (!ACCESS_LOG_FIELDS.has(k)) errors.push(`extension provider "${name}": envoyFileAccessLog has no field "${k}"`);
  if (typeof log.path !== 'string' || log.path === '') errors.push(`extension provider "${name}": envoyFileAccessLog.path is required`);
  const format = log.logFormat;
  if (format !== undefined && (!isRecord(format) || Object.keys(format).some((k) => k !== 'text' && k !== 'labels'))) {
    errors.push(`extension provider "${name}": envoyFileAccessLog.logFormat takes text or labels`);
  }
  return errors;
}

export function providerErrors(resources: readonly unknown[], meshConfigOverlay: unknown): string[] {
  const errors: string[] = [];
  const providers = new Map<string, Record<string, unknown>>();
  for (const p of extensionProviders(meshConfigOverlay)) {
    const name = typeof p.name === 'string' ? p.name : '';
    if (isRecord(p.envoyFileAccessLog)) {
      errors.push(...accessLogErrors(name, p.envoyFileAccessLog));
      continue;
    }
    const grpc = p.envoyExtAuthzGrpc;
    if (!isRecord(grpc)) {
      errors.push(`extension provider "${name}": expected envoyExtAuthzGrpc or envoyFileAccessLog`);
      continue;
    }
    for (const k of Object.keys(grpc)) if (!GRPC_FIELDS.has(k)) errors.push(`extension provider "${name}": envoyExtAuthzGrpc has no field "${k}"`);
    if (typeof grpc.service !== 'string' || grpc.service === '') errors.push(`extension provider "${name}": service is required`);
    if (typeof grpc.port !== 'number') errors.push(`extension provider "${name}": port is required`);
    if (grpc.failOpen !== false) errors.push(`extension provider "${name}": failOpen must be false (fail closed)`);
    providers.set(name, grpc);
  }
  const claimed = new Map<string, string>();
  for (const r of resources) {
    if (!isRecord(r) || r.kind !== 'AuthorizationPolicy') continue;
    const spec = isRecord(r.spec) ? r.spec : {};
    if (spec.action !== 'CUSTOM') continue;
    const name = isRecord(spec.provider) && typeof spec.provider.name === 'string' ? spec.provider.name : '';
    if (!providers.has(name)) errors.push(`${resourceId(r)}: provider "${name}" is not an extension provider in the mesh config`);
    const ns = isRecord(r.metadata) ? String(r.metadata.namespace) : '';
    const selector = isRecord(spec.selector) ? JSON.stringify(spec.selector.matchLabels ?? {}) : '{}';
    const key = `${ns} ${selector}`;
    const other = claimed.get(key);
    if (other !== undefined && other !== name) errors.push(`${resourceId(r)}: workload already uses provider "${other}"; Istio allows one per workload`);
    claimed.set(key, name);
  }
  return errors;
}
