import type { Deployment } from './deployment-schema.js';
import type { GuardModule } from './guard-modules.js';

/**
 * The proxy-wasm filters in the order they run, after ext_authz. Every
 * rendering (WasmPlugin, EnvoyFilter, the demo's and envoy/envoy.yaml's local
 * Envoy) takes its filters and their order from this list.
 *
 * Form guard (the default): one filter, the guard module, running both
 * checks in one stream context (cheaper than two filters); its config is
 * `{rateLimit?, payloadLimit?}`. Form separate: one filter per check. Either
 * way the rate limit runs first, so a caller over budget is turned away
 * before its body is counted, and an oversized request still spends a token
 * (a flood of big requests is throttled too).
 */

export interface ChainFilter {
  /** The filter (filters/<id>): names its rendered resources, the same whichever build runs it. */
  id: 'guard' | 'rate-limit' | 'payload-limit';
  /**
   * The module file (build/filters/<module>.wasm): the filter itself, or for
   * guard the build the configuration needs (guard-modules.ts).
   */
  module: GuardModule | 'rate-limit' | 'payload-limit';
  /** Envoy filter, plugin and VM name; also the root id. */
  name: string;
  url: string;
  sha256: string | null;
  config: unknown;
}

export function filterChain(d: Deployment): ChainFilter[] {
  const f = d.filters;
  if (f.form === 'guard') {
    const { rateLimit: rl, payloadLimit: pl } = f;
    if (rl === null && pl === null) return [];
    const config = { ...(rl !== null ? { rateLimit: rl.config } : {}), ...(pl !== null ? { payloadLimit: pl.config } : {}) };
    // One filter name whichever build runs it: the name is also the plugin and VM name,
    // which keys the rate limit's buckets, so switching builds keeps every caller's bucket.
    return [{ id: 'guard', module: f.guard.module, name: 'infergate-guard', url: f.guard.url, sha256: f.guard.sha256, config }];
  }
  const { rateLimit: rl, payloadLimit: pl } = f;
  const out: ChainFilter[] = [];
  if (rl) out.push({ id: 'rate-limit', module: 'rate-limit', name: 'infergate-rate-limit', url: rl.url, sha256: rl.sha256, config: rl.config });
  if (pl) out.push({ id: 'payload-limit', module: 'payload-limit', name: 'infergate-payload-limit', url: pl.url, sha256: pl.sha256, config: pl.config });
  return out;
}

/** Where the EnvoyFilter form loads a filter's module inside the sidecar. */
export function moduleFile(d: Deployment, f: ChainFilter): string {
  return `${d.filters.moduleDir}/${f.module}.wasm`;
}
