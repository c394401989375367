/**
 * Reads the URI of the last element of an x-forwarded-client-cert header.
 *
 * Each proxy hop appends one element; only the last was added by the proxy
 * in front of us (Istio's sidecar uses APPEND_FORWARD), so earlier elements
 * are only as trustworthy as every hop before. Values may be quoted and a
 * quoted value may contain `,` `;` or `=`, so the header is tokenised rather
 * than split.
 */
export function lastXfccUri(header: string): string | null {
  const elements: Array<Map<string, string>> = [];
  let current = new Map<string, string>();
  let i = 0;
  const n = header.length;
  while (i < n) {
    while (i < n && header[i] === ' ') i++;
    const eq = header.indexOf('=', i);
    if (eq === -1) return null;
    const key = header.slice(i, eq).trim().toLowerCase();
    i = eq + 1;
    let value = '';
    if (header[i] === '"') {
      i++;
      while (i < n && header[i] !== '"') {
        if (header[i] === '\\' && i + 1 < n) i++;
        value += header[i];
        i++;
      }
      if (i >= n) return null; // unterminated quote
      i++;
    } else {
      const start = i;
      while (i < n && header[i] !== ';' && header[i] !== ',') i++;
      value = header.slice(start, i);
    }
    // A repeated key in one element is ambiguous: refuse rather than pick one.
    if (current.has(key)) return null;
    current.set(key, value);
    if (i < n && header[i] === ',') {
      elements.push(current);
      current = new Map();
    } else if (i < n && header[i] !== ';') {
      return null;
    }
    i++;
  }
  elements.push(current);
  const last = elements[elements.length - 1]!;
  return last.get('uri') ?? null;
}
