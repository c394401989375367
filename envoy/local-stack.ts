import { join } from 'node:path';
import { REPO_ROOT as ROOT } from '../ext-authz/src/repo-root.js';
import { type ChainFilter, filterChain } from '../istio/render/filter-chain.js';
import type { GlobalQuotas } from '../istio/render/global-quotas-schema.js';
import { quotaFilters, quotaRateLimits, rateLimitHeaderFilter } from '../istio/render/global-quotas.js';
import { loadRenderInput } from '../istio/render/load-input.js';
import { type GlobalRateLimit, RATE_LIMIT_CLUSTER, renderBootstrap, wasmHttpFilter, type TlsFiles } from './bootstrap.js';

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
  /**
   * The global rate-limit service (gRPC, and HTTP for its health check) and
   * its Redis: used only when the manifest has globalQuotas. Absent: the
   * helpers that start them (envoy/ratelimit-process.ts, redis-process.ts)
   * pick free ports; Envoy needs the service's actual gRPC port.
   */
  readonly rateLimit?: number;
  readonly rateLimitHttp?: number;
  readonly redis?: number;
}
/** 6380, not Redis's 6379, which a Debian redis-server package already holds on a developer's machine. */
export const FIXED_PORTS: Ports = { envoy: 10443, admin: 9901, authz: 9191, metrics: 9464, model: 8080, rateLimit: 8081, rateLimitHttp: 8082, redis: 6380 };
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

/** The manifest's global quotas (null without a globalQuotas section), validated as `infergate render` validates them. */
export function localGlobalQuotas(manifest = LOCAL_MANIFEST): GlobalQuotas | null {
  return loadRenderInput(manifest).globalQuotas;
}

/**
 * The global quotas as the local Envoy runs them, the same filters and
 * route rate limits the Istio EnvoyFilter patches in, calling the service
 * at `port` on loopback.
 */
export function localGlobalRateLimit(q: GlobalQuotas, port: number): GlobalRateLimit {
  return {
    service: { host: '127.0.0.1', port },
    firstFilters: [rateLimitHeaderFilter()],
    filters: quotaFilters(q, RATE_LIMIT_CLUSTER),
    rateLimits: quotaRateLimits(q),
  };
}

/**
 * The chain as local Envoy HTTP filters, each loading `<moduleDir>/<module>.wasm`
 * (for guard, the build the configuration needs); Envoy's filter name is the chain name.
 */
export function localWasmFilters(chain: readonly ChainFilter[], moduleDir: string): object[] {
  return chain.map((f) => wasmHttpFilter(f.name, `${moduleDir}/${f.module}.wasm`, f.config));
}

/**
 * Envoy's bootstrap for the local stack: mTLS listener, ext_authz to the
 * server, the manifest's filters, its global quotas (when it has any: then
 * `ports.rateLimit` must be the running service's gRPC port), the model server.
 * `chain` and `globalQuotas` default to LOCAL_MANIFEST's.
 */
export function localBootstrap(o: {
  ports: Ports;
  tls: TlsFiles;
  moduleDir: string;
  accessLog: string;
  chain?: readonly ChainFilter[];
  globalQuotas?: GlobalQuotas | null;
}): string {
  const q = o.globalQuotas === undefined ? localGlobalQuotas() : o.globalQuotas;
  if (q !== null && !o.ports.rateLimit) {
    throw new Error('the manifest has globalQuotas: the local stack needs ports.rateLimit, the gRPC port of the running rate-limit service (envoy/ratelimit-process.ts)');
  }
  return renderBootstrap({
    listenerPort: o.ports.envoy,
    adminPort: o.ports.admin,
    tls: o.tls,
    extAuthz: { host: '127.0.0.1', port: o.ports.authz },
    httpFilters: localWasmFilters(o.chain ?? localFilterChain(), o.moduleDir),
    upstream: { host: '127.0.0.1', port: o.ports.model },
    accessLogPath: o.accessLog,
    ...(q !== null ? { globalRateLimit: localGlobalRateLimit(q, o.ports.rateLimit!) } : {}),
  });
}
