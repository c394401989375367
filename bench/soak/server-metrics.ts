/** What the soak reads from the server's Prometheus /metrics (prom-client's process metrics and infergate's own). */

export async function metricsText(port: number): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`);
  if (res.status !== 200) throw new Error(`/metrics answered ${res.status}`);
  return res.text();
}

function gauge(text: string, name: string): number {
  const m = new RegExp(`^${name} ([0-9.e+-]+)$`, 'm').exec(text);
  return m ? Number(m[1]) : NaN;
}

/** Cumulative infergate_check_duration_seconds buckets: [upper bound in s, count]. */
export function durationBuckets(text: string): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (const m of text.matchAll(/^infergate_check_duration_seconds_bucket\{le="([^"]+)"\} ([0-9.e+]+)$/gm)) {
    out.push([m[1] === '+Inf' ? Infinity : Number(m[1]), Number(m[2])]);
  }
  return out;
}

/** histogram_quantile as Prometheus does it: linear within the bucket the rank falls in. Seconds. */
export function histogramQuantile(q: number, before: Array<[number, number]>, after: Array<[number, number]>): number {
  const cum = after.map(([le, c], i) => [le, c - (before[i]?.[1] ?? 0)] as [number, number]);
  const total = cum[cum.length - 1]?.[1] ?? 0;
  if (total <= 0) return NaN;
  const rank = q * total;
  let lower = 0;
  let below = 0;
  for (const [le, c] of cum) {
    if (c >= rank) {
      if (le === Infinity) return lower; // beyond the last finite bucket: report its bound
      return lower + ((le - lower) * (rank - below)) / Math.max(1, c - below);
    }
    lower = le;
    below = c;
  }
  return NaN;
}

/** The server's memory figures for a sample: V8 heap used and total, external memory, decision cache entries. */
export async function serverExtra(port: number): Promise<Record<string, number>> {
  const text = await metricsText(port);
  return {
    heapUsed: gauge(text, 'infergate_nodejs_heap_size_used_bytes'),
    heapTotal: gauge(text, 'infergate_nodejs_heap_size_total_bytes'),
    external: gauge(text, 'infergate_nodejs_external_memory_bytes'),
    cacheEntries: gauge(text, 'infergate_decision_cache_entries'),
  };
}

/** The server's decision cache counters, read at the end of a phase. */
export async function serverCounters(port: number): Promise<Record<string, number>> {
  const text = await metricsText(port);
  return {
    'server cache hits': gauge(text, 'infergate_decision_cache_hits_total'),
    'server cache misses': gauge(text, 'infergate_decision_cache_misses_total'),
  };
}
