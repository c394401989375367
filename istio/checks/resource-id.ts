/** `Kind namespace/name`, the prefix of every rule violation, so a failure names the object. */
export function resourceId(r: unknown): string {
  const o = (r ?? {}) as { kind?: unknown; metadata?: { name?: unknown; namespace?: unknown } };
  const ns = typeof o.metadata?.namespace === 'string' ? `${o.metadata.namespace}/` : '';
  return `${String(o.kind ?? '?')} ${ns}${String(o.metadata?.name ?? '?')}`;
}

export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function asArray(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [];
}
