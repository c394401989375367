/**
 * SPIFFE ID validation and parsing (SPIFFE-ID standard §2). Written by hand
 * rather than with a URL parser: WHATWG URL normalises (lower-cases, decodes,
 * resolves dot segments) exactly the things the standard says must be
 * rejected, so a parser would turn a forged ID into a valid-looking one.
 */

export interface SpiffeId {
  /** The ID exactly as presented (already known to be canonical). */
  readonly id: string;
  readonly trustDomain: string;
  /** Path with its leading slash, or "" for a bare trust-domain ID. */
  readonly path: string;
  /** Istio-style `/ns/<ns>/sa/<sa>` parts, null otherwise. */
  readonly namespace: string | null;
  readonly serviceAccount: string | null;
}

export const SPIFFE_MAX_BYTES = 2048;
const PREFIX = 'spiffe://';

function isTrustDomainChar(c: number): boolean {
  return (
    (c >= 0x61 && c <= 0x7a) || // a-z
    (c >= 0x30 && c <= 0x39) || // 0-9
    c === 0x2e || // .
    c === 0x2d || // -
    c === 0x5f // _
  );
}

function isPathChar(c: number): boolean {
  return isTrustDomainChar(c) || (c >= 0x41 && c <= 0x5a); // plus A-Z
}

/** Returns why `td` is not a valid trust domain name, or null if it is. */
export function trustDomainError(td: string): string | null {
  if (td.length === 0) return 'trust domain is missing';
  if (td.length > 255) return 'trust domain is longer than 255 bytes';
  for (let i = 0; i < td.length; i++) {
    const c = td.charCodeAt(i);
    if (c === 0x40) return 'trust domain cannot contain userinfo';
    if (c === 0x3a) return 'trust domain cannot contain a port';
    if (c === 0x25) return 'trust domain cannot be percent-encoded';
    if (!isTrustDomainChar(c)) {
      return 'trust domain characters are limited to lowercase letters, numbers, dots, dashes, and underscores';
    }
  }
  return null;
}

/** Returns why `path` (after the trust domain) is invalid, or null. */
function pathError(path: string): string | null {
  if (path.length === 0) return null;
  if (path.charCodeAt(0) !== 0x2f) return 'path must have a leading slash';
  let segStart = 1;
  for (let i = 1; i <= path.length; i++) {
    const c = i < path.length ? path.charCodeAt(i) : 0x2f;
    if (c === 0x2f) {
      const seg = path.slice(segStart, i);
      if (seg.length === 0) {
        return i === path.length ? 'path cannot have a trailing slash' : 'path cannot contain empty segments';
      }
      if (seg === '.' || seg === '..') return 'path cannot contain dot segments';
      segStart = i + 1;
      continue;
    }
    if (c === 0x25) return 'path cannot be percent-encoded';
    if (c === 0x3f) return 'SPIFFE ID cannot contain a query';
    if (c === 0x23) return 'SPIFFE ID cannot contain a fragment';
    if (!isPathChar(c)) return 'path segment characters are limited to letters, numbers, dots, dashes, and underscores';
  }
  return null;
}

/** Returns why `s` is not a valid SPIFFE ID, or null if it is. */
export function spiffeIdError(s: string): string | null {
  if (s.length === 0) return 'SPIFFE ID cannot be empty';
  if (Buffer.byteLength(s, 'utf8') > SPIFFE_MAX_BYTES) return `SPIFFE ID is longer than ${SPIFFE_MAX_BYTES} bytes`;
  if (!s.startsWith(PREFIX)) return 'scheme is missing or invalid';
  const rest = s.slice(PREFIX.length);
  const slash = rest.indexOf('/');
  const authority = slash === -1 ? rest : rest.slice(0, slash);
  const path = slash === -1 ? '' : rest.slice(slash);
  // A query or fragment inside the authority would otherwise read as a bad trust-domain character.
  const q = authority.search(/[?#]/);
  if (q !== -1) return authority[q] === '?' ? 'SPIFFE ID cannot contain a query' : 'SPIFFE ID cannot contain a fragment';
  return trustDomainError(authority) ?? pathError(path);
}

const ISTIO_PATH = /^\/ns\/([^/]+)\/sa\/([^/]+)$/;

/**
 * Parses a SPIFFE ID, returning null when it is invalid (use spiffeIdError
 * for the reason). Callers on the hot path call this once per request.
 */
export function parseSpiffeId(s: string): SpiffeId | null {
  if (spiffeIdError(s) !== null) return null;
  const rest = s.slice(PREFIX.length);
  const slash = rest.indexOf('/');
  const trustDomain = slash === -1 ? rest : rest.slice(0, slash);
  const path = slash === -1 ? '' : rest.slice(slash);
  const m = ISTIO_PATH.exec(path);
  return { id: s, trustDomain, path, namespace: m ? m[1]! : null, serviceAccount: m ? m[2]! : null };
}
