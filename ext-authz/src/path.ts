import { AuthzError, REASONS } from './errors.js';

/**
 * Normalises an HTTP request-target into the path rules are matched on.
 *
 * Parsed by hand, never with a URL parser: `new URL('//admin/x', base)` reads
 * `admin` as a host, which is how a `//admin` path once walked past
 * OPA-Envoy. Anything whose meaning depends on which decoder the upstream
 * uses (encoded slashes, backslashes, double encoding) is refused rather
 * than guessed at, so the path we authorise is the path the model server
 * serves.
 */

export const MAX_PATH_BYTES = 8192;

function invalid(why: string): AuthzError {
  return new AuthzError(REASONS.invalid_path, why);
}

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  return -1;
}

/** Bytes whose encoded form changes how the path is split or decoded again. */
function forbiddenDecoded(b: number): string | null {
  if (b === 0x2f) return 'encoded slash (%2F)';
  if (b === 0x5c) return 'encoded backslash (%5C)';
  if (b === 0x25) return 'encoded percent sign (%25), i.e. double encoding';
  if (b === 0x3f) return 'encoded question mark (%3F)';
  if (b === 0x23) return 'encoded hash (%23)';
  if (b === 0x00) return 'encoded NUL (%00)';
  if (b < 0x20 || b === 0x7f) return 'encoded control character';
  return null;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Percent-decodes once, refusing escapes that would be ambiguous downstream. */
function decodeOnce(raw: string): string {
  const bytes = new Uint8Array(raw.length);
  let n = 0;
  let highBytes = false;
  for (let i = 0; i < raw.length; i++) {
    const c = raw.charCodeAt(i);
    if (c !== 0x25) {
      bytes[n++] = c;
      continue;
    }
    if (i + 2 >= raw.length) throw invalid('truncated percent-encoding');
    const hi = hexValue(raw.charCodeAt(i + 1));
    const lo = hexValue(raw.charCodeAt(i + 2));
    if (hi < 0 || lo < 0) throw invalid('invalid percent-encoding');
    const b = (hi << 4) | lo;
    const why = forbiddenDecoded(b);
    if (why !== null) throw invalid(why);
    if (b >= 0x80) highBytes = true;
    bytes[n++] = b;
    i += 2;
  }
  const out = bytes.subarray(0, n);
  if (!highBytes) return String.fromCharCode(...out);
  try {
    return utf8.decode(out);
  } catch {
    throw invalid('percent-encoding is not valid UTF-8');
  }
}

/** Merges repeated slashes and resolves dot segments; refuses to climb above the root. */
function resolveSegments(decoded: string): string {
  const parts = decoded.split('/');
  const out: string[] = [];
  // parts[0] is the empty string before the leading slash.
  const last = parts.length - 1;
  let trailingSlash = false;
  for (let i = 1; i <= last; i++) {
    const seg = parts[i]!;
    if (seg === '' ) {
      if (i === last) trailingSlash = true;
      continue;
    }
    if (seg === '.') {
      if (i === last) trailingSlash = true;
      continue;
    }
    if (seg === '..') {
      if (out.length === 0) throw invalid('dot-dot segment climbs above the root');
      out.pop();
      if (i === last) trailingSlash = true;
      continue;
    }
    out.push(seg);
  }
  if (out.length === 0) return '/';
  return '/' + out.join('/') + (trailingSlash ? '/' : '');
}

/**
 * Returns the normalised path for a raw request-target, or throws an
 * AuthzError with code `invalid_path` saying exactly what was wrong.
 */
export function normalisePath(target: string): string {
  if (target.length === 0) throw invalid('empty path');
  let end = target.length;
  let needsDecode = false;
  let needsResolve = false;
  let prev = 0;
  for (let i = 0; i < target.length; i++) {
    const c = target.charCodeAt(i);
    if (c === 0x3f || c === 0x23) {
      end = i;
      break;
    }
    if (c === 0x5c) throw invalid('raw backslash');
    if (c < 0x20 || c === 0x7f) throw invalid('raw control character');
    if (c === 0x20) throw invalid('raw space');
    if (c > 0x7e) throw invalid('raw non-ASCII character');
    if (c === 0x25) needsDecode = true;
    else if (c === 0x2e && prev === 0x2f) needsResolve = true;
    else if (c === 0x2f && prev === 0x2f) needsResolve = true;
    prev = c;
  }
  if (end > MAX_PATH_BYTES) throw invalid(`path longer than ${MAX_PATH_BYTES} bytes`);
  if (target.charCodeAt(0) !== 0x2f) throw invalid('path does not start with "/"');
  const raw = end === target.length ? target : target.slice(0, end);
  // Fast path: most real requests have nothing to decode or resolve.
  if (!needsDecode && !needsResolve) return raw;
  const decoded = needsDecode ? decodeOnce(raw) : raw;
  return resolveSegments(decoded);
}
