/** What the soak reads from Envoy's admin interface. */

/** Envoy's counters that explain failures: ext_authz outcomes, the authz cluster's timeouts and connection teardowns, response classes. */
export async function envoyCounters(adminPort: number): Promise<Record<string, number>> {
  const text = await (await fetch(`http://127.0.0.1:${adminPort}/stats`)).text();
  const out: Record<string, number> = {};
  const keep = /^(http\.ingress\.ext_authz\.(ok|denied|error|failure_mode_allowed)|cluster\.infergate_ext_authz\.(upstream_rq_timeout|upstream_cx_total|upstream_cx_destroy_remote_with_active_rq|upstream_cx_close_notify|upstream_rq_pending_overflow|upstream_rq_total)|http\.ingress\.downstream_rq_[2-5]xx): (\d+)$/;
  for (const line of text.split('\n')) {
    const m = keep.exec(line);
    if (m) out[`envoy ${m[1]!.replace(/^(http\.ingress|cluster\.infergate_ext_authz)\./, (p) => (p.startsWith('cluster') ? 'authz_cluster.' : ''))}`] = Number(m[m.length - 1]);
  }
  return out;
}

/** Envoy's allocator view (admin /memory) for a sample: bytes allocated and the allocator's heap size. */
export async function envoyMemory(adminPort: number): Promise<{ envoyAllocated: number; envoyHeap: number }> {
  const mem = (await (await fetch(`http://127.0.0.1:${adminPort}/memory`)).json()) as Record<string, string>;
  return { envoyAllocated: Number(mem.allocated), envoyHeap: Number(mem.heap_size) };
}
