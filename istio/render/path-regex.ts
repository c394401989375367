/**
 * A manifest path glob as an RE2 regex over Envoy's `:path` header, for a
 * global-quota budget's `paths` filter. The server matches globs against the
 * decoded path without its query (ext-authz/src/path.ts, globToRegex in
 * ext-authz/src/manifest.ts); Envoy's header matcher sees the raw
 * request-target after normalize_path. So that every request the server
 * authorizes under a glob is counted under it, the regex also takes:
 *  - a query string (`/v1/models/x:predict?stream=1`);
 *  - a percent-escape for each character of the glob that Envoy's path
 *    normalization leaves encoded: the sub-delimiters and `:` `@`
 *    (`/v1/models/x%3Apredict` is `/v1/models/x:predict` to the server and to
 *    most model servers). Envoy decodes escaped unreserved characters
 *    (letters, digits, `-._~`) itself, which test/istio/global-quotas-envoy.test.ts
 *    shows with the real Envoy;
 *  - one trailing slash, as deny rules do (some servers serve `/x/` as `/x`):
 *    a budget errs towards counting.
 * `*` matches within a segment, a trailing `/**` the path and everything below.
 */

const UNRESERVED = /^[A-Za-z0-9._~-]$/;
const QUERY = '(?:\\?.*)?$';
/** Envoy rejects a regex whose RE2 program is larger than this (runtime re2.max_program_size.error_level). */
export const MAX_PROGRAM_SIZE = 100;

function escapeRegex(c: string): string {
  return /[.+?^${}()|[\]\\*]/.test(c) ? `\\${c}` : c;
}

function literal(c: string): string {
  if (UNRESERVED.test(c)) return escapeRegex(c);
  const hex = c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0');
  const either = [...hex].map((h) => (/[A-F]/.test(h) ? `[${h}${h.toLowerCase()}]` : h)).join('');
  return `(?:${escapeRegex(c)}|%${either})`;
}

/** The regex for one glob (already validated by the server's manifest code). */
export function pathRegex(glob: string): string {
  if (glob === '/**') return '^/.*$';
  const below = glob.endsWith('/**');
  const stem = below ? glob.slice(0, -3) : glob;
  let body = '';
  for (const c of stem) body += c === '*' ? '[^/]*' : c === '/' ? '/' : literal(c);
  if (below) return `^${body}(?:/.*)?${QUERY}`;
  return `^${body}${glob.endsWith('/') ? '' : '/?'}${QUERY}`;
}

/**
 * An upper bound of the regex's RE2 program size: RE2 emits at most one
 * instruction per character of this kind of pattern, plus a few for the
 * match itself (test/istio/path-regex.test.ts measures it with the real
 * Envoy). Over Envoy's limit the whole listener is rejected, so render
 * refuses the glob instead.
 */
export function programSizeBound(regex: string): number {
  return regex.length + 8;
}

export function pathRegexSizeError(glob: string, regex: string): string | null {
  const size = programSizeBound(regex);
  return size <= MAX_PROGRAM_SIZE ? null : `path glob "${glob}" is too long for Envoy's regex limit (program size up to ${size}, at most ${MAX_PROGRAM_SIZE}): use a shorter glob, e.g. with a *`;
}
