/** Reading the numbers the running processes publish: the server's /metrics and Envoy's admin /stats. */

export interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

/** Prometheus text exposition → samples (comments skipped; label values without escapes, as prom-client writes ours). */
export function parsePrometheus(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="([^"]*)"/g)) labels[l[1]!] = l[2]!;
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}

/** The value of the sample with this name whose labels include `labels`; 0 when there is none (a counter never incremented). */
export function sampleValue(samples: readonly Sample[], name: string, labels: Record<string, string> = {}): number {
  const s = samples.find((x) => x.name === name && Object.entries(labels).every(([k, v]) => x.labels[k] === v));
  return s?.value ?? 0;
}

/** One scrape of infergate-authz's /metrics. */
export async function scrapeAuthz(metricsPort: number): Promise<Sample[]> {
  const res = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
  if (res.status !== 200) throw new Error(`/metrics answered ${res.status}`);
  return parsePrometheus(await res.text());
}

/** Envoy's admin /stats (text form, "name: value" per line) → name → value. */
export async function envoyStats(adminPort: number): Promise<Map<string, number>> {
  const text = await (await fetch(`http://127.0.0.1:${adminPort}/stats`)).text();
  const stats = new Map<string, number>();
  for (const line of text.split('\n')) {
    const i = line.lastIndexOf(': ');
    if (i > 0) stats.set(line.slice(0, i), Number(line.slice(i + 2)));
  }
  return stats;
}

/** Connections each Envoy worker accepted on the listener (listener stats are named after the configured address, port 0 here). */
export function connectionsPerWorker(stats: Map<string, number>, workers = 2): number[] {
  return Array.from({ length: workers }, (_, w) => {
    const re = new RegExp(`^listener\\.127\\.0\\.0\\.1_\\d+\\.worker_${w}\\.downstream_cx_total$`);
    let n = 0;
    for (const [k, v] of stats) if (re.test(k)) n += v;
    return n;
  });
}

/** Envoy's heap as its admin /memory reports it (tcmalloc: bytes allocated and heap size). */
export async function envoyMemory(adminPort: number): Promise<{ allocated: number; heapSize: number }> {
  const m = (await (await fetch(`http://127.0.0.1:${adminPort}/memory`)).json()) as { allocated: string; heap_size: string };
  return { allocated: Number(m.allocated), heapSize: Number(m.heap_size) };
}
