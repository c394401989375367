/**
 * An independent reference model of what the access manifest allows, written
 * from the documents (README "The access manifest", docs/ext-authz.md and the
 * target request-path semantics) and from nothing in ext-authz/src. It is
 * deliberately plain: loops and a recursive glob matcher, no regular
 * expressions built from globs, no URL parser. Where the documents leave a
 * corner open the model takes the reading that allows less, and the comment
 * says so; the property tests then report the converse separately.
 */

export interface RefRule {
  readonly name: string;
  readonly action?: 'allow' | 'deny';
  readonly callers: readonly string[];
  readonly hosts?: readonly string[];
  readonly methods?: readonly string[];
  readonly paths?: readonly string[];
}

/** The manifest as an operator writes it; the tests serialise this very object for the server. */
export interface RefManifest {
  readonly trustDomains: readonly string[];
  readonly requestPaths?: { readonly allowSemicolons?: boolean };
  readonly quarantine?: readonly string[];
  readonly rules: readonly RefRule[];
}

/** The parts of a CheckRequest the documents say a decision depends on. */
export interface RefRequest {
  /** attributes.source.principal; undefined when absent. */
  readonly principal: string | undefined;
  /** attributes.request.http, or null for a check from Envoy's network (TCP) filter. */
  readonly http: { readonly method: string; readonly path: string; readonly host: string } | null;
}

export interface RefDecision {
  readonly allowed: boolean;
  /**
   * The reason codes the documents allow for this request. Several when the
   * request is malformed in more than one way, because the documents do not
   * say whether method, path or host is checked first.
   */
  readonly codes: readonly string[];
  /** The rule the documents say is reported: the first matching one of its kind. */
  readonly rule: string | null;
}

const LOWER = 'abcdefghijklmnopqrstuvwxyz';
const UPPER = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ';
const DIGITS = '0123456789';
const TRUST_DOMAIN_CHARS = LOWER + DIGITS + '.-_';
const SPIFFE_PATH_CHARS = TRUST_DOMAIN_CHARS + UPPER;
const HOST_CHARS = LOWER + DIGITS + '.-_';
const HEX = '0123456789abcdefABCDEF';
// RFC 9110 tchar: what a method token may hold.
const TCHAR = "!#$%&'*+-.^_`|~" + DIGITS + LOWER + UPPER;

function onlyFrom(s: string, alphabet: string): boolean {
  for (const ch of s) if (!alphabet.includes(ch)) return false;
  return true;
}

/**
 * docs/ext-authz.md "Identity": scheme spiffe, lowercase trust domain of
 * [a-z0-9._-], path segments of [A-Za-z0-9._-], no empty, "." or ".."
 * segments, no trailing slash, no percent-encoding, query, fragment, port or
 * userinfo (all of which fall outside those alphabets), at most 2048 bytes.
 * Returns the trust domain, or null when the ID is invalid.
 */
export function refTrustDomain(id: string): string | null {
  if (new TextEncoder().encode(id).length > 2048) return null;
  const scheme = 'spiffe://';
  if (!id.startsWith(scheme)) return null;
  const rest = id.slice(scheme.length);
  const slash = rest.indexOf('/');
  const td = slash === -1 ? rest : rest.slice(0, slash);
  if (td.length === 0 || td.length > 255 || !onlyFrom(td, TRUST_DOMAIN_CHARS)) return null;
  if (slash === -1) return td;
  const segments = rest.slice(slash + 1).split('/');
  for (const seg of segments) {
    if (seg === '' || seg === '.' || seg === '..') return null;
    if (!onlyFrom(seg, SPIFFE_PATH_CHARS)) return null;
  }
  return td;
}

/** A caller pattern: an exact ID, or `X/*` for every ID below X. */
function callerMatches(pattern: string, id: string): boolean {
  if (pattern.endsWith('/*')) return id.startsWith(pattern.slice(0, -1));
  return id === pattern;
}

/** HTTP method: a token (RFC 9110) of at most 32 characters (the server's documented bound on a malformed method). */
export function refMethodValid(method: string): boolean {
  return method.length >= 1 && method.length <= 32 && onlyFrom(method, TCHAR);
}

/**
 * docs/ext-authz.md "Route": lower-cased, port and trailing dot dropped;
 * anything but a DNS name ([a-z0-9._-]) or a bracketed IPv6 literal is
 * invalid. Lower-casing is ASCII only: a DNS name is ASCII, so a non-ASCII
 * character is "anything but a DNS name" whatever it lower-cases to.
 * An absent host (empty) matches no host pattern but is not malformed.
 */
export function refHost(raw: string): string | null {
  if (raw === '') return '';
  let h = '';
  for (const ch of raw) {
    const i = UPPER.indexOf(ch);
    h += i === -1 ? ch : LOWER[i];
  }
  const portOk = (p: string): boolean => p.length >= 1 && p.length <= 5 && onlyFrom(p, DIGITS);
  if (h.startsWith('[')) {
    const close = h.indexOf(']');
    if (close === -1) return null;
    const literal = h.slice(1, close);
    const after = h.slice(close + 1);
    if (literal === '' || !onlyFrom(literal, '0123456789abcdef:.')) return null;
    if (after !== '' && !(after.startsWith(':') && portOk(after.slice(1)))) return null;
    return h.slice(0, close + 1);
  }
  const colon = h.indexOf(':');
  if (colon !== -1) {
    if (!portOk(h.slice(colon + 1))) return null;
    h = h.slice(0, colon);
  }
  if (h.endsWith('.')) h = h.slice(0, -1);
  if (h.length === 0 || h.length > 255 || !onlyFrom(h, HOST_CHARS)) return null;
  return h;
}

function hostMatches(pattern: string, host: string): boolean {
  if (pattern.startsWith('*.')) return host.endsWith(pattern.slice(1));
  return host === pattern;
}

/**
 * path-semantics.md: the path rules are matched on, or null for invalid_path.
 * Cut at the first `?` (a `#` before it is refused); refuse raw backslash, space, control and
 * non-ASCII characters and (unless allowed) `;`; decode each %XX once,
 * refusing truncated or non-hex escapes and escapes to / \ % ? # NUL or a
 * control byte, and (unless allowed) `;`; the bytes must be valid UTF-8 and
 * hold no C1 control; no
 * segment may be `.` or `..` nor empty, except a single trailing slash.
 */
export function refPath(target: string, allowSemicolons: boolean): string | null {
  if (target === '') return null;
  let cut = target.length;
  for (let i = 0; i < target.length; i++) {
    if (target[i] === '?') {
      cut = i;
      break;
    }
    // A raw "#" before the query: servers split a fragment differently, so refused.
    if (target[i] === '#') return null;
  }
  const raw = target.slice(0, cut);
  if (!raw.startsWith('/') || raw.length > 8192) return null;
  const bytes: number[] = [];
  for (let i = 0; i < raw.length; i++) {
    const c = raw.charCodeAt(i);
    if (c === 0x25) {
      const hi = raw[i + 1];
      const lo = raw[i + 2];
      if (hi === undefined || lo === undefined || !HEX.includes(hi) || !HEX.includes(lo)) return null;
      const b = parseInt(hi + lo, 16);
      if (b < 0x20 || b === 0x7f || b === 0x2f || b === 0x5c || b === 0x25 || b === 0x3f || b === 0x23) return null;
      if (b === 0x3b && !allowSemicolons) return null;
      bytes.push(b);
      i += 2;
      continue;
    }
    if (c <= 0x20 || c >= 0x7f || c === 0x5c) return null;
    if (c === 0x3b && !allowSemicolons) return null;
    bytes.push(c);
  }
  let decoded: string;
  try {
    decoded = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(Uint8Array.from(bytes));
  } catch {
    return null;
  }
  // C1 controls (U+0080..U+009F) count as control characters too.
  for (const ch of decoded) if (ch >= '\u0080' && ch <= '\u009f') return null;
  // Decoding cannot make a "/", so the segments are the raw ones, decoded.
  const segments = decoded.split('/').slice(1);
  for (let k = 0; k < segments.length; k++) {
    const seg = segments[k]!;
    if (seg === '.' || seg === '..') return null;
    if (seg === '' && k !== segments.length - 1) return null;
  }
  return decoded;
}

/** `*` = any run of characters but `/`, as plain recursion. */
function matchStem(glob: string, path: string): boolean {
  if (glob === '') return path === '';
  if (glob[0] === '*') {
    if (matchStem(glob.slice(1), path)) return true;
    return path !== '' && path[0] !== '/' && matchStem(glob, path.slice(1));
  }
  return path !== '' && glob[0] === path[0] && matchStem(glob.slice(1), path.slice(1));
}

/** A glob; a trailing `/**` is that path and everything below it. Case-sensitive. */
export function refGlob(glob: string, path: string): boolean {
  if (!glob.endsWith('/**')) return matchStem(glob, path);
  const stem = glob.slice(0, -3);
  for (let i = 0; i <= path.length; i++) {
    const rest = path.slice(i);
    if ((rest === '' || rest.startsWith('/')) && matchStem(stem, path.slice(0, i))) return true;
  }
  return false;
}

/** Deny globs also match the path with one extra trailing slash (path-semantics.md "Rules"). */
function denyGlob(glob: string, path: string): boolean {
  return refGlob(glob, path) || (path.endsWith('/') && refGlob(glob, path.slice(0, -1)));
}

interface Route {
  readonly host: string;
  readonly method: string;
  readonly path: string;
}

function ruleMatches(rule: RefRule, id: string, route: Route | null): boolean {
  if (!rule.callers.some((p) => callerMatches(p, id))) return false;
  // A check without an HTTP section only meets rules without hosts, methods and paths.
  if (route === null) return rule.hosts === undefined && rule.methods === undefined && rule.paths === undefined;
  if (rule.hosts && !rule.hosts.some((p) => hostMatches(p, route.host))) return false;
  if (rule.methods && !rule.methods.includes(route.method)) return false;
  const glob = (rule.action ?? 'allow') === 'deny' ? denyGlob : refGlob;
  if (rule.paths && !rule.paths.some((g) => glob(g, route.path))) return false;
  return true;
}

function deny(...codes: string[]): RefDecision {
  return { allowed: false, codes, rule: null };
}

/**
 * Order of judgement (README): invalid or missing identity, foreign trust
 * domain, quarantine, deny rules, allow rules; nothing matching is
 * no_matching_rule. A malformed route (method, path, host) is refused
 * before the manifest is consulted.
 */
export function refDecide(m: RefManifest, req: RefRequest): RefDecision {
  if (req.principal === undefined || req.principal === '') return deny('no_identity');
  const id = req.principal;
  const td = refTrustDomain(id);
  if (td === null) return deny('invalid_identity');
  let route: Route | null = null;
  if (req.http !== null) {
    const malformed: string[] = [];
    if (!refMethodValid(req.http.method)) malformed.push('invalid_request');
    const path = refPath(req.http.path, m.requestPaths?.allowSemicolons ?? false);
    if (path === null) malformed.push('invalid_path');
    const host = refHost(req.http.host);
    if (host === null) malformed.push('invalid_host');
    if (malformed.length > 0) return deny(...malformed);
    route = { method: req.http.method, path: path!, host: host! };
  }
  if (!m.trustDomains.includes(td)) return deny('foreign_trust_domain');
  if ((m.quarantine ?? []).some((p) => callerMatches(p, id))) return deny('quarantined');
  const denyRule = m.rules.find((r) => r.action === 'deny' && ruleMatches(r, id, route));
  if (denyRule) return { allowed: false, codes: ['denied_by_rule'], rule: denyRule.name };
  const allowRule = m.rules.find((r) => (r.action ?? 'allow') === 'allow' && ruleMatches(r, id, route));
  if (allowRule) return { allowed: true, codes: ['allowed'], rule: allowRule.name };
  return deny('no_matching_rule');
}
