import type { Deployment } from './deployment-schema.js';

/**
 * The proxy-wasm filters in the order they run, after ext_authz: the rate
 * limit first, so a caller over budget is turned away before its body is
 * counted, and an oversized request still spends a token (a flood of big
 * requests is throttled too). Both renderings (WasmPlugin, EnvoyFilter) take
 * their order from this list.
 */

export interface ChainFilter {
  /** File name of the module (filters/<id>, build/filters/<id>.wasm). */
  id: 'rate-limit' | 'payload-limit';
  /** Envoy filter, plugin and VM name; also the root id. */
  name: string;
  url: string;
  sha256: string | null;
  config: unknown;
}

export function filterChain(d: Deployment): ChainFilter[] {
  const out: ChainFilter[] = [];
  const rl = d.filters.rateLimit;
  if (rl) out.push({ id: 'rate-limit', name: 'infergate-rate-limit', url: rl.url, sha256: rl.sha256, config: rl.config });
  const pl = d.filters.payloadLimit;
  if (pl) out.push({ id: 'payload-limit', name: 'infergate-payload-limit', url: pl.url, sha256: pl.sha256, config: pl.config });
  return out;
}

export function moduleFile(d: Deployment, f: ChainFilter): string {
  return `${d.filters.moduleDir}/${f.id}.wasm`;
}
