/**
 * What the load generator sends and what a correct answer to each request
 * is: the server phase's mix of Check requests against
 * test/fixtures/manifests/example.yaml, and the Envoy phase's HTTPS callers
 * (demo/manifest.yaml rules) with the guard budgets that go with them.
 */

import { REPO_ROOT } from '../../ext-authz/src/repo-root.js';

export const HOST = 'model-serving.ml.svc.cluster.local';
/** The Envoy phase's manifest: workload rules and guard budgets keyed on the caller (bench/soak/manifest.yaml). */
export const SOAK_MANIFEST = `${REPO_ROOT}bench/soak/manifest.yaml`;
export const HOT_MODELS = 10;

/** One request of a plan: what to send and what a correct answer is. */
export interface GrpcReq { principal: string; method: string; path: string; allow: boolean }
export interface HttpsReq { who: string; path: string; expect: readonly number[]; ok: number; distinct: boolean }

/** Small deterministic PRNG (mulberry32), so every run sends the same sequence. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Server phase mix, against test/fixtures/manifests/example.yaml. The hot set
 * (repeated: cache hits once seen, re-evaluated when their TTL runs out) and
 * the distinct requests (a new identity every time: a miss, a new cache
 * entry, LRU eviction once the cache is full).
 */
export function grpcHotSet(): GrpcReq[] {
  const gw = 'spiffe://cluster.local/ns/gateway/sa/api-gateway';
  const out: GrpcReq[] = [];
  for (let m = 0; m < HOT_MODELS; m++) {
    out.push({ principal: gw, method: 'POST', path: `/v1/models/m${m}:predict`, allow: true }); // gateway-predicts
    out.push({ principal: gw, method: 'POST', path: `/v2/models/m${m}/infer`, allow: true });
    for (let s = 0; s < 5; s++) out.push({ principal: `spiffe://cluster.local/ns/batch/sa/scorer-${s}`, method: 'GET', path: `/v1/models/m${m}`, allow: true }); // batch-reads
    out.push({ principal: 'spiffe://cluster.local/ns/web/sa/frontend', method: 'POST', path: `/v1/models/m${m}:predict`, allow: false }); // no rule
  }
  out.push({ principal: gw, method: 'GET', path: '/admin/stats', allow: false }); // no-admin
  out.push({ principal: 'spiffe://cluster.local/ns/monitoring/sa/prober', method: 'GET', path: '/healthz', allow: true }); // mesh-probes
  return out;
}

export function grpcDistinct(n: number): GrpcReq {
  return n % 2 === 0
    ? { principal: `spiffe://cluster.local/ns/batch/sa/job-${n}`, method: 'GET', path: `/v1/models/m${n % HOT_MODELS}`, allow: true }
    : { principal: `spiffe://cluster.local/ns/tenant-${n}/sa/client`, method: 'POST', path: `/v1/models/m${n % HOT_MODELS}:predict`, allow: false };
}

/** Envoy phase identities (demo/manifest.yaml rules), share of the load, and the answers that are correct for each. */
export const HTTPS_CALLERS = [
  { who: 'api-gateway', id: 'spiffe://cluster.local/ns/gateway/sa/api-gateway', share: 0.40, expect: [200] },
  { who: 'scorer-a', id: 'spiffe://cluster.local/ns/batch/sa/scorer-a', share: 0.25, expect: [200] },
  { who: 'scorer-b', id: 'spiffe://cluster.local/ns/batch/sa/scorer-b', share: 0.25, expect: [200] },
  { who: 'greedy', id: 'spiffe://cluster.local/ns/batch/sa/greedy', share: 0.08, expect: [200, 429] },
  { who: 'frontend', id: 'spiffe://cluster.local/ns/web/sa/frontend', share: 0.02, expect: [403] },
] as const;

export const GREEDY = HTTPS_CALLERS.find((c) => c.who === 'greedy')!;

/**
 * The greedy caller's budget (a guard rateLimit rule): half of what it sends,
 * so about half its requests get 429 at any --envoy-rate; everyone else gets
 * the default, many times what they send.
 */
export function greedyLimit(rate: number): { perSecond: number; burst: number } {
  const perSecond = Math.max(1, Math.round((rate * GREEDY.share) / 2));
  return { perSecond, burst: 2 * perSecond };
}
export const defaultLimit = (rate: number): { perSecond: number; burst: number } => ({ perSecond: Math.max(100, 4 * rate), burst: Math.max(200, 8 * rate) });
export const BODY = JSON.stringify({ instances: [[0.1, 0.2, 0.3, 0.4], [0.5, 0.6, 0.7, 0.8]] });

export function httpsPick(r: () => number, distinct: boolean, n: number): HttpsReq {
  const x = r();
  let acc = 0;
  let c: (typeof HTTPS_CALLERS)[number] = HTTPS_CALLERS[0];
  for (const k of HTTPS_CALLERS) {
    acc += k.share;
    if (x < acc) { c = k; break; }
  }
  const m = Math.floor(r() * HOT_MODELS);
  // Distinct paths only for callers that are allowed, so each one is a new cache entry behind a 200.
  const fresh = distinct && c.expect[0] === 200 && c.who !== 'greedy';
  const path = fresh ? `/v1/models/d${n}:predict`
    : c.who === 'api-gateway' && r() < 0.5 ? `/v2/models/m${m}/infer` : `/v1/models/m${m}:predict`;
  return { who: c.who, path, expect: c.expect, ok: 200, distinct: fresh };
}

/** The share of the Envoy phase's requests that are distinct (new cache entries): --miss-share of the allowed, non-greedy callers' share. */
export function httpsDistinctShare(missShare: number): number {
  return missShare * (HTTPS_CALLERS.filter((c) => c.who !== 'greedy' && c.expect[0] === 200).reduce((a, c) => a + c.share, 0));
}
