import { ACCESS_LOG_FIELDS } from '../../ext-authz/src/access-log-fields.js';
import type { Deployment } from './deployment-schema.js';
import { GLOBAL_QUOTA_STAT_PREFIXES } from './global-quotas.js';
import { GRPC_PORT, type Resource, serverHost } from './names.js';

/**
 * The meshConfig addition as an IstioOperator overlay (`istioctl install -f`;
 * with Helm, the same `meshConfig` block goes into istiod's values). The
 * provider is gRPC: Envoy then sends every request header, and the server
 * sets and strips headers itself through the CheckResponse.
 */

export function extensionProvider(d: Deployment): Record<string, unknown> {
  return {
    name: d.provider.name,
    envoyExtAuthzGrpc: {
      service: serverHost(d),
      port: GRPC_PORT,
      timeout: d.provider.timeout,
      // Fail closed: if the server cannot answer, the request is denied, never let through unchecked.
      failOpen: false,
      ...(d.provider.statusOnError !== null ? { statusOnError: d.provider.statusOnError } : {}),
    },
  };
}

/** The access-log provider the rendered Telemetry resources select: Envoy's log with infergate's decision in it. */
export function accessLogProviderName(d: Deployment): string {
  return `${d.provider.name}-access-log`;
}

export function accessLogProvider(d: Deployment): Record<string, unknown> {
  return {
    name: accessLogProviderName(d),
    envoyFileAccessLog: { path: '/dev/stdout', logFormat: { labels: { ...ACCESS_LOG_FIELDS } } },
  };
}

export function meshConfig(d: Deployment): Resource {
  return {
    apiVersion: 'install.istio.io/v1alpha1',
    kind: 'IstioOperator',
    metadata: { name: 'infergate', namespace: 'istio-system' },
    spec: {
      meshConfig: {
        extensionProviders: [extensionProvider(d), accessLogProvider(d)],
        // Sidecars resolve dot segments and merge slashes before ext_authz, and forward
        // the result, so the path infergate authorises is the path the model server
        // gets. Istio's default (BASE) does not merge slashes, and infergate refuses
        // a path with "//" rather than guess how the model server reads it.
        pathNormalization: { normalization: 'MERGE_SLASHES' },
        defaultConfig: {
          // Istio sidecars drop stats outside a small default set; this keeps the
          // filters' counters (wasmcustom.infergate.*) that the rate-limit alert reads,
          // and the global quotas' ratelimit filters' (cluster.<inbound>.ratelimit.<filter>.ok,
          // over_limit, error, failure_mode_allowed).
          proxyStatsMatcher: { inclusionRegexps: ['.*infergate\\.(payload_limit|rate_limit)\\..*', `.*\\.ratelimit\\.(${GLOBAL_QUOTA_STAT_PREFIXES.join('|')})\\..*`] },
        },
      },
    },
  };
}
