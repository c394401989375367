import type { Deployment, Workload } from './deployment-schema.js';
import { filterChain } from './filter-chain.js';
import { labels, type Resource, workloadResourceName } from './names.js';

/**
 * The filters as Istio WasmPlugins, one per filterChain entry and workload:
 * with the guard form (the default) one plugin per workload, with the
 * separate form one per check. Phase STATS puts them after Istio's
 * authorization filters (where the CUSTOM ext_authz call sits) and before the
 * router; within a phase a higher priority runs first, so priorities follow
 * filterChain's order. SERVER mode: inbound only, where the peer certificate
 * is the caller's.
 */
export function wasmPlugins(d: Deployment, w: Workload): Resource[] {
  const chain = filterChain(d);
  return chain.map((f, i) => ({
    apiVersion: 'extensions.istio.io/v1alpha1',
    kind: 'WasmPlugin',
    metadata: { name: workloadResourceName(w, `-${f.id}`), namespace: w.namespace, labels: labels('filters') },
    spec: {
      selector: { matchLabels: { ...w.selector } },
      url: f.url,
      ...(f.sha256 !== null ? { sha256: f.sha256 } : {}),
      pluginName: f.name,
      phase: 'STATS',
      priority: (chain.length - i) * 10,
      // A module that fails to load or crashes must not let requests through unfiltered.
      failStrategy: 'FAIL_CLOSE',
      type: 'HTTP',
      match: [{ mode: 'SERVER', ...(w.ports ? { ports: w.ports.map((number) => ({ number })) } : {}) }],
      pluginConfig: structuredClone(f.config),
    },
  }));
}

export function allWasmPlugins(d: Deployment): Resource[] {
  return d.workloads.flatMap((w) => wasmPlugins(d, w));
}
