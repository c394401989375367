import type { Deployment, Workload } from './deployment-schema.js';
import { type ChainFilter, filterChain, moduleFile } from './filter-chain.js';
import { labels, type Resource, workloadResourceName } from './names.js';

export const WASM_TYPE = 'type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm';
const STRING_VALUE = 'type.googleapis.com/google.protobuf.StringValue';
export const ENVOY_FILTER_PRIORITY = 10;

/** The Envoy HTTP filter for one proxy-wasm module, as in envoy/bootstrap.ts (one VM per filter). */
export function wasmFilterValue(d: Deployment, f: ChainFilter): Record<string, unknown> {
  return {
    name: f.name,
    typed_config: {
      '@type': WASM_TYPE,
      config: {
        name: f.name,
        root_id: f.name,
        vm_config: { vm_id: f.name, runtime: 'envoy.wasm.runtime.v8', code: { local: { filename: moduleFile(d, f) } } },
        configuration: { '@type': STRING_VALUE, value: JSON.stringify(f.config) },
        fail_open: false,
      },
    },
  };
}

/**
 * The filters as one EnvoyFilter per workload, for meshes that do not use
 * WasmPlugin or need exact placement: one patch per filterChain entry (one,
 * the guard, in the default form), each inserted right before the router on
 * the inbound listener, so they run after Istio's ext_authz and in the patch
 * order. The modules must be on the sidecar's file system
 * (docs/istio.md: a ConfigMap mounted with sidecar.istio.io/userVolume).
 */
export function envoyFilter(d: Deployment, w: Workload): Resource {
  return {
    apiVersion: 'networking.istio.io/v1alpha3',
    kind: 'EnvoyFilter',
    metadata: { name: workloadResourceName(w, '-filters'), namespace: w.namespace, labels: labels('filters') },
    spec: {
      workloadSelector: { labels: { ...w.selector } },
      // INSERT_BEFORE is relative to the router; an explicit priority (applied after the
      // default-0 EnvoyFilters) makes the order of application defined (istioctl IST0151).
      priority: ENVOY_FILTER_PRIORITY,
      // One patch per filter (per gated port, if ports are listed), in chain order.
      configPatches: (w.ports ?? [null]).flatMap((port) =>
        filterChain(d).map((f) => ({
          applyTo: 'HTTP_FILTER',
          match: { context: 'SIDECAR_INBOUND', listener: { ...(port !== null ? { portNumber: port } : {}), ...routerMatch() } },
          patch: { operation: 'INSERT_BEFORE', value: wasmFilterValue(d, f) },
        })),
      ),
    },
  };
}

function routerMatch(): Record<string, unknown> {
  return { filterChain: { filter: { name: 'envoy.filters.network.http_connection_manager', subFilter: { name: 'envoy.filters.http.router' } } } };
}

export function allEnvoyFilters(d: Deployment): Resource[] {
  return filterChain(d).length === 0 ? [] : d.workloads.map((w) => envoyFilter(d, w));
}
