import type { Deployment, Workload } from './deployment-schema.js';
import { ENVOY_FILTER_PRIORITY } from './envoy-filters.js';
import type { GlobalQuotas } from './global-quotas-schema.js';
import { quotaFilters, quotaRateLimits, rateLimitHeaderFilter } from './global-quotas.js';
import { labels, rateLimitCluster, type Resource, workloadResourceName } from './names.js';

/**
 * The global quotas on each protected workload's inbound sidecar, as one
 * EnvoyFilter per workload, applied in either filter form (WasmPlugin or
 * EnvoyFilter for the guard):
 *  - the ratelimit filters (deny budgets, then allow budgets), each
 *    INSERT_BEFORE the router. The priority is above the guard's
 *    EnvoyFilter, so they are inserted after it and land between the guard
 *    and the router; a WasmPlugin guard sits right after ext_authz anyway.
 *    The guard stays the cheap first line: a caller over its per-replica
 *    burst is turned away before the network hop to the service;
 *  - the header filter (one x-ratelimit-* value each), INSERT_FIRST, so it
 *    sees each response after every limiter has written its headers;
 *  - the rate-limit actions on the inbound routes: an HTTP_ROUTE MERGE into
 *    every route with a route action of the sidecar's inbound route
 *    configurations (Istio 1.29 builds one per port, `inbound|<port>||`,
 *    virtual host `inbound|http|<port>`, route `default`, and one for the
 *    passthrough chains; test/istio-xds asserts the result).
 * With `ports` on the workload, every patch is limited to those ports, as
 * the CUSTOM policy is: a port ext_authz does not check would carry
 * unverified x-infergate-* headers.
 */

export const GLOBAL_QUOTA_PRIORITY = ENVOY_FILTER_PRIORITY + 10;
const HCM = 'envoy.filters.network.http_connection_manager';

function listener(port: number | null, subFilter?: string): Record<string, unknown> {
  return {
    ...(port !== null ? { portNumber: port } : {}),
    filterChain: { filter: { name: HCM, ...(subFilter ? { subFilter: { name: subFilter } } : {}) } },
  };
}

export function globalQuotaFilter(d: Deployment, w: Workload, q: GlobalQuotas): Resource {
  const rateLimits = quotaRateLimits(q);
  return {
    apiVersion: 'networking.istio.io/v1alpha3',
    kind: 'EnvoyFilter',
    metadata: { name: workloadResourceName(w, '-global-quotas'), namespace: w.namespace, labels: labels('global-quotas') },
    spec: {
      workloadSelector: { labels: { ...w.selector } },
      priority: GLOBAL_QUOTA_PRIORITY,
      configPatches: (w.ports ?? [null]).flatMap((port) => [
        { applyTo: 'HTTP_FILTER', match: { context: 'SIDECAR_INBOUND', listener: listener(port) }, patch: { operation: 'INSERT_FIRST', value: rateLimitHeaderFilter() } },
        ...quotaFilters(q, rateLimitCluster(d)).map((value) => ({
          applyTo: 'HTTP_FILTER',
          match: { context: 'SIDECAR_INBOUND', listener: listener(port, 'envoy.filters.http.router') },
          patch: { operation: 'INSERT_BEFORE', value },
        })),
        {
          applyTo: 'HTTP_ROUTE',
          match: { context: 'SIDECAR_INBOUND', routeConfiguration: { ...(port !== null ? { portNumber: port } : {}), vhost: { route: { action: 'ROUTE' } } } },
          patch: { operation: 'MERGE', value: { route: { rate_limits: structuredClone(rateLimits) } } },
        },
      ]),
    },
  };
}

export function allGlobalQuotaFilters(d: Deployment, q: GlobalQuotas | null): Resource[] {
  return q === null ? [] : d.workloads.map((w) => globalQuotaFilter(d, w, q));
}
