import { AuthzError, REASONS } from './errors.js';

/**
 * Turns an HTTP request-target into the path rules are matched on.
 *
 * The rule is: accept only paths whose meaning every common model server
 * agrees on, so the path authorised is the path served. Servers disagree
 * about dot segments (Tomcat, nginx and Go's ServeMux resolve them;
 * uvicorn/Starlette, Express and Netty do not), about `//` (merged, kept,
 * rejected or redirected), and about `;` (servlet containers strip
 * `;params` from each segment and read `..;` as `..`). So infergate does
 * not resolve or merge anything itself: Envoy does that, with
 * `normalize_path` and `merge_slashes`, before both this server and the
 * upstream see the path. Whatever is still ambiguous when it gets here is
 * refused. The only transformations are cutting the query and decoding each
 * percent-escape once, which every server does alike.
 *
 * Parsed by hand, never with a URL parser: `new URL('//admin/x', base)`
 * reads `admin` as a host, which is how a `//admin` path once walked past
 * OPA-Envoy.
 */

export const MAX_PATH_BYTES = 8192;

export interface PathOptions {
  /** `;` is an ordinary character to the model server (no servlet container behind it). */
  readonly allowSemicolons: boolean;
}

export const STRICT_PATHS: PathOptions = Object.freeze({ allowSemicolons: false });

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

const SEMICOLON_HINT = 'servlet containers strip ";" path parameters; see requestPaths.allowSemicolons';

/** Percent-decodes once, refusing escapes that would be ambiguous downstream. */
function decodeOnce(raw: string, opts: PathOptions): string {
  const bytes = new Uint8Array(raw.length);
  let n = 0;
  let highBytes = false;
  let segment = 0;
  for (let i = 0; i < raw.length; i++) {
    const c = raw.charCodeAt(i);
    if (c !== 0x25) {
      if (c === 0x2f) segment++;
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
    if (b === 0x3b && !opts.allowSemicolons) throw invalid(`encoded semicolon (%3B) in segment ${segment}: ${SEMICOLON_HINT}`);
    if (b >= 0x80) highBytes = true;
    bytes[n++] = b;
    i += 2;
  }
  const out = bytes.subarray(0, n);
  if (!highBytes) return String.fromCharCode(...out);
  let text: string;
  try {
    text = utf8.decode(out);
  } catch {
    throw invalid('percent-encoding is not valid UTF-8');
  }
  // C1 controls (U+0080–U+009F, e.g. NEL) are line breaks to some log readers.
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0x80 && c <= 0x9f) throw invalid('encoded control character');
  }
  return text;
}

/**
 * Refuses empty and dot segments, raw (checked on the raw path) or encoded
 * (checked again after decoding). A single trailing slash is not an empty
 * segment: `/v1/models/` is a path every server reads alike.
 */
function checkSegments(path: string, encoded: boolean): void {
  let start = 1;
  let segment = 1;
  while (start <= path.length) {
    let end = path.indexOf('/', start);
    if (end === -1) end = path.length;
    const len = end - start;
    if (len === 0 && end < path.length) {
      throw invalid(`empty segment (//) at segment ${segment}: merge slashes in Envoy (merge_slashes)`);
    }
    if ((len === 1 || len === 2) && path.charCodeAt(start) === 0x2e && (len === 1 || path.charCodeAt(start + 1) === 0x2e)) {
      const what = encoded ? 'percent-encoded dot segment' : 'dot segment';
      throw invalid(`${what} "${'.'.repeat(len)}" at segment ${segment}: resolve dot segments in Envoy (normalize_path)`);
    }
    start = end + 1;
    segment++;
  }
}

/**
 * Returns the path for a raw request-target, or throws an AuthzError with
 * code `invalid_path` saying exactly what was wrong.
 */
export function normalisePath(target: string, opts: PathOptions = STRICT_PATHS): string {
  if (target.length === 0) throw invalid('empty path');
  if (target.charCodeAt(0) !== 0x2f) throw invalid('path does not start with "/"');
  let end = target.length;
  let escapes = false;
  let suspectSegments = false;
  let segment = 0;
  let prev = 0;
  for (let i = 0; i < target.length; i++) {
    const c = target.charCodeAt(i);
    if (c === 0x3f) {
      end = i;
      break;
    }
    // A request-target never carries a fragment (RFC 9112), and servers split
    // one differently: uvicorn's h11 and Go keep "#..." in the path.
    if (c === 0x23) throw invalid('raw hash (#): a request-target carries no fragment');
    if (c === 0x5c) throw invalid('raw backslash');
    if (c < 0x20 || c === 0x7f) throw invalid('raw control character');
    if (c === 0x20) throw invalid('raw space');
    if (c > 0x7e) throw invalid('raw non-ASCII character');
    if (c === 0x3b && !opts.allowSemicolons) throw invalid(`semicolon (;) in segment ${segment}: ${SEMICOLON_HINT}`);
    if (c === 0x25) escapes = true;
    else if (c === 0x2f) {
      segment++;
      if (prev === 0x2f) suspectSegments = true;
    } else if (c === 0x2e && prev === 0x2f) suspectSegments = true;
    prev = c;
  }
  if (end > MAX_PATH_BYTES) throw invalid(`path longer than ${MAX_PATH_BYTES} bytes`);
  const raw = end === target.length ? target : target.slice(0, end);
  if (suspectSegments) checkSegments(raw, false);
  // Fast path: most real requests have nothing to decode.
  if (!escapes) return raw;
  const decoded = decodeOnce(raw, opts);
  checkSegments(decoded, true);
  return decoded;
}
