import { AuthzError, REASONS } from './errors.js';

export const MAX_HOST_BYTES = 255;

function invalid(why: string): AuthzError {
  return new AuthzError(REASONS.invalid_host, why);
}

function isHostChar(c: number): boolean {
  return (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c === 0x2e || c === 0x2d || c === 0x5f;
}

/**
 * Lower-cases the Host/:authority value and drops its port, so that
 * `Model-Serving.ml:8080` and `model-serving.ml` meet the same rules. A
 * trailing dot (fully-qualified form) is dropped too. Anything that is not a
 * plain DNS name or a bracketed IPv6 literal is refused: a host rule must not
 * be dodged by a byte the upstream's router would ignore.
 */
export function normaliseHost(raw: string): string {
  if (raw.length === 0) return '';
  // Unicode case mapping turns some non-ASCII letters into ASCII ones (U+212A
  // KELVIN SIGN lower-cases to "k"), so refuse non-ASCII before lower-casing.
  for (let i = 0; i < raw.length; i++) {
    if (raw.charCodeAt(i) > 0x7e) throw invalid('host contains a character outside [a-z0-9._-]');
  }
  let host = raw.toLowerCase();
  if (host.charCodeAt(0) === 0x5b) {
    const close = host.indexOf(']');
    if (close === -1) throw invalid('unterminated IPv6 literal');
    const rest = host.slice(close + 1);
    if (rest.length > 0 && !/^:[0-9]{1,5}$/.test(rest)) throw invalid('bad port');
    const literal = host.slice(1, close);
    if (!/^[0-9a-f:.]+$/.test(literal)) throw invalid('bad IPv6 literal');
    return host.slice(0, close + 1);
  }
  const colon = host.indexOf(':');
  if (colon !== -1) {
    if (!/^[0-9]{1,5}$/.test(host.slice(colon + 1))) throw invalid('bad port');
    host = host.slice(0, colon);
  }
  if (host.endsWith('.')) host = host.slice(0, -1);
  if (host.length === 0) throw invalid('empty host name');
  if (host.length > MAX_HOST_BYTES) throw invalid(`host longer than ${MAX_HOST_BYTES} bytes`);
  for (let i = 0; i < host.length; i++) {
    if (!isHostChar(host.charCodeAt(i))) throw invalid('host contains a character outside [a-z0-9._-]');
  }
  return host;
}
