import { join } from 'node:path';
import { REPO_ROOT as ROOT } from '../ext-authz/src/repo-root.js';
import { type ChainFilter, filterChain } from '../istio/render/filter-chain.js';
import { loadRenderInput } from '../istio/render/load-input.js';
import { renderBootstrap, wasmHttpFilter, type TlsFiles } from './bootstrap.js';

/**
 * The local topology, in one place: which workloads call in (each with a
 * SPIFFE client certificate), which ports each process listens on, which
 * manifest the server reads and which filters Envoy runs. The demo, the
 * checked-in envoy/envoy.yaml (which the Docker compose stack mounts) and
 * the tests all take it from here.
 */

/** The example workloads, each with its own SPIFFE client certificate. */
export const WORKLOADS = {
  'api-gateway': 'spiffe://cluster.local/ns/gateway/sa/api-gateway',
  'web-frontend': 'spiffe://cluster.local/ns/web/sa/frontend',
  'batch-scorer': 'spiffe://cluster.local/ns/batch/sa/scorer',
  compromised: 'spiffe://cluster.local/ns/ml/sa/compromised',
  'foreign-agent': 'spiffe://partner.example/ns/agents/sa/crawler',
} as const;
export type Workload = keyof typeof WORKLOADS;

/** The access manifest of the local stack: its rules for the server, its deployment section for the filters. */
export const LOCAL_MANIFEST = join(ROOT, 'demo/manifest.yaml');

export interface Ports {
  readonly envoy: number;
  readonly admin: number;
  readonly authz: number;
  readonly metrics: number;
  readonly model: number;
}
export const FIXED_PORTS: Ports = { envoy: 10443, admin: 9901, authz: 9191, metrics: 9464, model: 8080 };
export const EPHEMERAL_PORTS: Ports = { envoy: 0, admin: 0, authz: 0, metrics: 0, model: 0 };

/**
 * The filters come from the deployment section of the same manifest the
 * authorization server reads, through the same filterChain that `infergate
 * render` turns into WasmPlugins and EnvoyFilters: same form (guard by
 * default), same order, same configs, validated the same way.
 */
export function localFilterChain(manifest = LOCAL_MANIFEST): ChainFilter[] {
  const { deployment } = loadRenderInput(manifest);
  const { payloadLimit, rateLimit } = deployment.filters;
  if (payloadLimit === null || rateLimit === null) throw new Error(`${manifest}: the local stack needs deployment.filters.payloadLimit and .rateLimit`);
  return filterChain(deployment);
}

/** The chain as local Envoy HTTP filters, each loading `<moduleDir>/<id>.wasm`; Envoy's filter name is the chain name. */
export function localWasmFilters(chain: readonly ChainFilter[], moduleDir: string): object[] {
  return chain.map((f) => wasmHttpFilter(f.name, `${moduleDir}/${f.id}.wasm`, f.config));
}

/** Envoy's bootstrap for the local stack: mTLS listener, ext_authz to the server, the manifest's filters, the model server. */
export function localBootstrap(o: { ports: Ports; tls: TlsFiles; moduleDir: string; accessLog: string; chain?: readonly ChainFilter[] }): string {
  return renderBootstrap({
    listenerPort: o.ports.envoy,
    adminPort: o.ports.admin,
    tls: o.tls,
    extAuthz: { host: '127.0.0.1', port: o.ports.authz },
    httpFilters: localWasmFilters(o.chain ?? localFilterChain(), o.moduleDir),
    upstream: { host: '127.0.0.1', port: o.ports.model },
    accessLogPath: o.accessLog,
  });
}
