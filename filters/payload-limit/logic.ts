// Pure payload-limit decisions over plain values (no host calls), so they are
// easy to reason about and are exercised through the built module in tests.

export const enum RouteKind { Prefix, Path }

export class RouteLimit {
  constructor(readonly kind: RouteKind, readonly pattern: string, readonly maxBytes: i64) {}
}

/** The request path without its query string: limits attach to resources, not queries. */
export function stripQuery(path: string): string {
  const q = path.indexOf("?");
  return q < 0 ? path : path.substring(0, q);
}

/** Glob within one path segment: `*` matches any run of characters (iterative, no recursion). */
function matchSegment(pattern: string, text: string): bool {
  let p = 0, s = 0, starP = -1, mark = 0;
  while (s < text.length) {
    const pc = p < pattern.length ? pattern.charCodeAt(p) : -1;
    if (pc == 0x2a) { starP = p; mark = s; p++; continue; }
    if (pc == text.charCodeAt(s)) { p++; s++; continue; }
    if (starP < 0) return false;
    p = starP + 1;
    mark++;
    s = mark;
  }
  while (p < pattern.length && pattern.charCodeAt(p) == 0x2a) p++;
  return p == pattern.length;
}

/**
 * `*` never crosses a `/`, so "/v1/models/*:predict" covers every model's
 * predict verb but not deeper paths. No `*` means an exact match.
 */
export function matchPath(pattern: string, path: string): bool {
  const ps = pattern.split("/");
  const ts = path.split("/");
  if (ps.length != ts.length) return false;
  for (let i = 0; i < ps.length; i++) {
    if (!matchSegment(unchecked(ps[i]), unchecked(ts[i]))) return false;
  }
  return true;
}

/** First matching route wins (config order), else the default. */
export function limitFor(routes: RouteLimit[], defaultMaxBytes: i64, rawPath: string): i64 {
  const path = stripQuery(rawPath);
  for (let i = 0; i < routes.length; i++) {
    const r = unchecked(routes[i]);
    if (r.kind == RouteKind.Prefix ? path.startsWith(r.pattern) : matchPath(r.pattern, path)) return r.maxBytes;
  }
  return defaultMaxBytes;
}

/**
 * Decimal content-length from the header value's bytes (read in place, as the
 * host handed them over), or -1 when it is not a plain non-negative integer.
 */
export function parseContentLength(ptr: usize, len: i32): i64 {
  if (len <= 0 || len > 18) return -1;
  let n: i64 = 0;
  for (let i = 0; i < len; i++) {
    const c = <i32>load<u8>(ptr + <usize>i);
    if (c < 0x30 || c > 0x39) return -1;
    n = n * 10 + (c - 0x30);
  }
  return n;
}

/** Exactly the limit passes; one byte more does not. */
export function overLimit(bytes: i64, limit: i64): bool {
  return bytes > limit;
}

export function tooLargeBody(limit: i64): string {
  return "{\"code\":\"payload_too_large\",\"limit\":" + limit.toString() + "}";
}
