import { LineCounter, parseDocument } from 'yaml';
import { z } from 'zod';
import { ManifestError, issueError, readConfigFile, where } from './config-error.js';
import { normaliseHost } from './host.js';
import {
  compileJwks, DEFAULT_CLOCK_SKEW_SECONDS, DEFAULT_TOKEN_HEADER, EndUsersSchema,
  TOKEN_ALGORITHMS, TiersSchema, type EndUsersConfig, type EndUsersSection, type TiersSection,
} from './end-users/manifest.js';
import { spiffeIdError, trustDomainError } from './spiffe.js';

/**
 * The access manifest: the data operators write. It is validated strictly
 * (unknown keys, malformed IDs and globs, duplicate names are all errors) and
 * compiled into the shape the Rego policy reads, so the policy never has to
 * interpret glob syntax at request time.
 */

const RuleSchema = z.strictObject({
  name: z.string(),
  action: z.enum(['allow', 'deny']).optional(),
  callers: z.array(z.string()).min(1),
  hosts: z.array(z.string()).min(1).optional(),
  methods: z.array(z.string()).min(1).optional(),
  paths: z.array(z.string()).min(1).optional(),
  // Verified end-user claims (endUsers.claims says which claim is which).
  tenants: z.array(z.string().min(1)).min(1).optional(),
  tiers: z.array(z.string().min(1)).min(1).optional(),
  scopes: z.array(z.string().min(1)).min(1).optional(),
});

const RequestPathsSchema = z.strictObject({
  // Only for model servers that give ";" no special meaning; see docs/ext-authz.md.
  allowSemicolons: z.boolean().optional(),
});

const ManifestSchema = z.strictObject({
  trustDomains: z.array(z.string()).min(1),
  requestPaths: RequestPathsSchema.optional(),
  quarantine: z.array(z.string()).optional(),
  endUsers: EndUsersSchema.optional(),
  tiers: TiersSchema.optional(),
  rules: z.array(RuleSchema),
  // How to install infergate in a mesh (namespace, protected workloads, filter limits): read and
  // strictly validated by `infergate render`; the authorization server does not use it.
  deployment: z.record(z.string(), z.unknown()).optional(),
  // Budgets for Envoy's global rate-limit service: read and validated by `infergate render` and the local stack, like deployment.
  globalQuotas: z.record(z.string(), z.unknown()).optional(),
});

export type Manifest = z.infer<typeof ManifestSchema>;

/** A set of SPIFFE IDs as the policy reads it: exact IDs as object keys, `/*` patterns as prefixes. */
export interface CompiledCallers {
  exact: Record<string, true>;
  prefixes: string[];
}

export interface CompiledRule {
  name: string;
  action: 'allow' | 'deny';
  callers: CompiledCallers;
  hosts: { exact: Record<string, true>; suffixes: string[] } | null;
  methods: Record<string, true> | null;
  /** One compiled glob per path glob. */
  paths: CompiledGlob[] | null;
  /** Required end-user claims: tenant in the set, tier in the set, every scope present. */
  tenants: Record<string, true> | null;
  tiers: Record<string, true> | null;
  scopes: string[] | null;
}

export interface PolicyData {
  /** How request paths are read before matching (applied by the server, visible to custom policies). */
  request_paths: { allow_semicolons: boolean };
  trust_domains: Record<string, true>;
  quarantine: CompiledCallers;
  rules: CompiledRule[];
  /** Token verification (applied by the server before the policy); null without an endUsers section. */
  end_users: EndUsersConfig | null;
  /** Which model routes each tier may call, as compiled globs; null without a tiers section. */
  tiers: Record<string, { paths: CompiledGlob[]; rate_limit: { per_second: number; burst: number } | null }> | null;
}

export { ManifestError };

const RULE_NAME = /^[a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?$/;
const METHOD = /^[A-Z][A-Z0-9_-]{0,31}$/;
// What a normalised path can hold: RFC 3986 pchar without percent-encoding, plus the * wildcard.
const GLOB_SEGMENT = /^[A-Za-z0-9._~!$&'()*+,;=:@-]+$/;

function callerPatternError(p: string): string | null {
  if (p.endsWith('/*')) {
    const base = p.slice(0, -2);
    const err = spiffeIdError(base);
    return err === null ? null : `bad caller pattern "${p}": ${err}`;
  }
  if (p.includes('*')) return `bad caller pattern "${p}": * is only allowed as a trailing /*`;
  const err = spiffeIdError(p);
  return err === null ? null : `bad SPIFFE ID "${p}": ${err}`;
}

function compileCallers(patterns: readonly string[]): CompiledCallers {
  const exact: Record<string, true> = {};
  const prefixes: string[] = [];
  for (const p of patterns) {
    if (p.endsWith('/*')) prefixes.push(p.slice(0, -1));
    else exact[p] = true;
  }
  return { exact, prefixes };
}

function hostPatternError(h: string): string | null {
  const name = h.startsWith('*.') ? h.slice(2) : h;
  if (name.includes('*')) return `bad host pattern "${h}": * is only allowed as a leading *.`;
  if (name.includes(':')) return `bad host pattern "${h}": ports are dropped before matching, leave them out`;
  let normalised: string;
  try {
    normalised = normaliseHost(name);
  } catch (err) {
    return `bad host pattern "${h}": ${(err as Error).message}`;
  }
  if (normalised !== name) return `bad host pattern "${h}": write host names in lower case without a trailing dot`;
  return null;
}

function globError(g: string, allowSemicolons: boolean): string | null {
  if (!g.startsWith('/')) return `bad path glob "${g}": must start with "/"`;
  if (g === '/' || g === '/**') return null;
  const body = g.endsWith('/**') ? g.slice(1, -3) : g.slice(1);
  const trailingSlash = body.endsWith('/');
  const segments = (trailingSlash ? body.slice(0, -1) : body).split('/');
  for (const seg of segments) {
    if (seg === '') return `bad path glob "${g}": empty segment`;
    if (seg === '.' || seg === '..') return `bad path glob "${g}": dot segment can never match a normalised path`;
    if (seg.includes('**')) return `bad path glob "${g}": ** is only allowed as a trailing /**`;
    if (!GLOB_SEGMENT.test(seg)) return `bad path glob "${g}": character outside the normalised path alphabet`;
    if (!allowSemicolons && seg.includes(';')) return `bad path glob "${g}": ";" can never match unless requestPaths.allowSemicolons is true`;
  }
  return null;
}

function escapeRegex(s: string): string {
  return s.replace(/[.+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * `*` matches any characters but `/`; a trailing `/**` matches the path
 * itself and everything below it. With `trailingSlash` the glob also matches
 * the path with one more `/` at the end: deny rules use it, because some
 * servers (Spring MVC's trailing-slash match) serve `/x/` as `/x`.
 */
export function globToRegex(g: string, trailingSlash = false): string {
  if (g === '/**') return '^/.*$';
  const below = g.endsWith('/**');
  const stem = below ? g.slice(0, -3) : g;
  const body = stem.split('*').map(escapeRegex).join('[^/]*');
  if (below) return `^${body}(?:/.*)?$`;
  return trailingSlash && !g.endsWith('/') ? `^${body}/?$` : `^${body}$`;
}

/** A path glob as the policy matches it, without a regular expression (see compileGlob). */
export interface CompiledGlob {
  /** The glob split at "/" (the first is the empty segment before the leading slash): literals, or one `*` as prefix + suffix. */
  segments: Array<string | { prefix: string; suffix: string }>;
  /** A trailing `/**`: the path itself and anything below it. */
  below: boolean;
  /** Also match the path with one more "/" at the end (deny rules). */
  trailing_slash: boolean;
  /** Set instead, for a segment with several `*`: an anchored RE2 pattern. */
  regex: string | null;
}

/**
 * Compiles a glob for the policy. The wasm policy could match the regex of
 * globToRegex, but OPA's wasm runtime compiles a regular expression again on
 * every evaluation (its regex cache lives on the per-evaluation heap), which
 * was most of an evaluation's cost; comparing segments with startswith and
 * endswith needs no compilation. Only a segment with two or more `*` falls
 * back to the regex.
 */
export function compileGlob(g: string, trailingSlash = false): CompiledGlob {
  const below = g.endsWith('/**');
  const stem = below ? g.slice(0, -3) : g;
  const parts = stem.split('/');
  if (parts.some((p) => p.split('*').length > 2)) return { segments: [], below, trailing_slash: trailingSlash, regex: globToRegex(g, trailingSlash) };
  const segments = parts.map((p) => {
    const star = p.indexOf('*');
    return star === -1 ? p : { prefix: p.slice(0, star), suffix: p.slice(star + 1) };
  });
  return { segments, below, trailing_slash: trailingSlash && !below && !g.endsWith('/'), regex: null };
}

function check(file: string, err: string | null, path: ReadonlyArray<PropertyKey>): void {
  if (err !== null) throw new ManifestError(file, err, where(path));
}

function jwksUrlError(u: string): string | null {
  let url: URL;
  try {
    url = new URL(u);
  } catch {
    return `bad JWKS url "${u}": not a URL`;
  }
  if (url.protocol === 'https:') return null;
  const loopback = url.hostname === 'localhost' || url.hostname === '127.0.0.1' || url.hostname === '[::1]';
  return url.protocol === 'http:' && loopback ? null : `bad JWKS url "${u}": use https (plain http only to localhost)`;
}

function compileEndUsers(file: string, e: EndUsersSection): EndUsersConfig {
  e.delegates.forEach((p, i) => check(file, callerPatternError(p), ['endUsers', 'delegates', i]));
  const seen = new Map<string, number>();
  const issuers = e.issuers.map((iss, i) => {
    const at = ['endUsers', 'issuers', i];
    const first = seen.get(iss.issuer);
    check(file, first === undefined ? null : `issuer "${iss.issuer}" is listed twice, first at endUsers.issuers[${first}]`, [...at, 'issuer']);
    seen.set(iss.issuer, i);
    const jwks = compileJwks(iss.jwks);
    if ('url' in jwks) check(file, jwksUrlError(jwks.url), [...at, 'jwks', 'url']);
    else check(file, jwks.file.startsWith('/') || jwks.file.includes('..') ? `bad JWKS file "${jwks.file}": give a path relative to the manifest, without ".."` : null, [...at, 'jwks', 'file']);
    return {
      issuer: iss.issuer,
      audiences: [...iss.audiences],
      algorithms: [...new Set(iss.algorithms ?? TOKEN_ALGORITHMS)],
      jwks,
    };
  });
  return {
    token_header: e.tokenHeader ?? DEFAULT_TOKEN_HEADER,
    delegates: compileCallers(e.delegates),
    clock_skew_seconds: e.clockSkewSeconds ?? DEFAULT_CLOCK_SKEW_SECONDS,
    claims: { subject: e.claims?.subject ?? 'sub', tenant: e.claims?.tenant ?? null, tier: e.claims?.tier ?? null, scopes: e.claims?.scopes ?? null },
    issuers,
  };
}

function compileTiers(file: string, t: TiersSection, endUsers: EndUsersConfig | null, allowSemicolons: boolean): NonNullable<PolicyData['tiers']> {
  check(file, endUsers === null ? 'a tiers section needs an endUsers section (tiers come from verified tokens)' : null, ['tiers']);
  check(file, endUsers!.claims.tier === null ? 'a tiers section needs endUsers.claims.tier (which claim holds the tier)' : null, ['tiers']);
  const out: NonNullable<PolicyData['tiers']> = {};
  for (const [name, tier] of Object.entries(t)) {
    tier.paths.forEach((g, j) => check(file, globError(g, allowSemicolons), ['tiers', name, 'paths', j]));
    out[name] = {
      paths: tier.paths.map((g) => compileGlob(g)),
      rate_limit: tier.rateLimit ? { per_second: tier.rateLimit.perSecond, burst: tier.rateLimit.burst } : null,
    };
  }
  return out;
}

/** Validates a parsed manifest document and compiles it into policy data. */
export function compileManifest(doc: unknown, file: string): PolicyData {
  if (doc === null || doc === undefined) throw new ManifestError(file, 'manifest is empty', 'top level');
  const parsed = ManifestSchema.safeParse(doc, { reportInput: true });
  if (!parsed.success) throw issueError(file, parsed.error.issues);
  const m = parsed.data;
  const allowSemicolons = m.requestPaths?.allowSemicolons ?? false;
  const trustDomains: Record<string, true> = {};
  m.trustDomains.forEach((td, i) => {
    check(file, trustDomainError(td) === null ? null : `bad trust domain "${td}": ${trustDomainError(td)}`, ['trustDomains', i]);
    trustDomains[td] = true;
  });
  const quarantine = m.quarantine ?? [];
  quarantine.forEach((p, i) => check(file, callerPatternError(p), ['quarantine', i]));
  const endUsers = m.endUsers ? compileEndUsers(file, m.endUsers) : null;
  const tiers = m.tiers ? compileTiers(file, m.tiers, endUsers, allowSemicolons) : null;
  const seen = new Map<string, number>();
  const rules = m.rules.map((r, i): CompiledRule => {
    const at = (...rest: PropertyKey[]): PropertyKey[] => ['rules', i, ...rest];
    check(file, RULE_NAME.test(r.name) ? null : `bad rule name "${r.name}": use lowercase letters, digits, ".", "_" and "-"`, at('name'));
    const first = seen.get(r.name);
    check(file, first === undefined ? null : `duplicate rule name "${r.name}", first used at rules[${first}]`, at('name'));
    seen.set(r.name, i);
    r.callers.forEach((p, j) => check(file, callerPatternError(p), at('callers', j)));
    r.hosts?.forEach((h, j) => check(file, hostPatternError(h), at('hosts', j)));
    r.methods?.forEach((meth, j) => check(file, METHOD.test(meth) ? null : `bad method "${meth}": use an upper-case HTTP method token`, at('methods', j)));
    r.paths?.forEach((g, j) => check(file, globError(g, allowSemicolons), at('paths', j)));
    for (const [key, claim] of [['tenants', 'tenant'], ['tiers', 'tier'], ['scopes', 'scopes']] as const) {
      if (r[key] === undefined) continue;
      check(file, endUsers === null ? `"${key}" needs an endUsers section (which tokens to trust)` : null, at(key));
      check(file, endUsers!.claims[claim] === null ? `"${key}" needs endUsers.claims.${claim} (which claim holds it)` : null, at(key));
    }
    r.tiers?.forEach((t, j) => check(file, tiers !== null && !(t in tiers) ? `unknown tier "${t}": not in the tiers section` : null, at('tiers', j)));
    const hosts = r.hosts
      ? {
          exact: Object.fromEntries(r.hosts.filter((h) => !h.startsWith('*.')).map((h) => [h, true as const])),
          suffixes: r.hosts.filter((h) => h.startsWith('*.')).map((h) => h.slice(1)),
        }
      : null;
    const action = r.action ?? 'allow';
    return {
      name: r.name,
      action,
      callers: compileCallers(r.callers),
      hosts,
      methods: r.methods ? Object.fromEntries(r.methods.map((x) => [x, true as const])) : null,
      paths: r.paths ? r.paths.map((g) => compileGlob(g, action === 'deny')) : null,
      tenants: r.tenants ? Object.fromEntries(r.tenants.map((t) => [t, true as const])) : null,
      tiers: r.tiers ? Object.fromEntries(r.tiers.map((t) => [t, true as const])) : null,
      scopes: r.scopes ? [...new Set(r.scopes)].sort() : null,
    };
  });
  return { request_paths: { allow_semicolons: allowSemicolons }, trust_domains: trustDomains, quarantine: compileCallers(quarantine), rules, end_users: endUsers, tiers };
}

/** Parses manifest text (YAML, which includes JSON); errors name the file and line. */
export function parseManifestText(text: string, file: string): PolicyData {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { uniqueKeys: true, prettyErrors: false, lineCounter });
  const err = doc.errors[0];
  if (err) {
    const { line } = lineCounter.linePos(err.pos[0]);
    throw new ManifestError(file, `invalid YAML: ${err.message.split('\n')[0]}`, `line ${line}`);
  }
  return compileManifest(doc.toJS(), file);
}

export function loadManifestFile(path: string): { data: PolicyData; text: string } {
  const { file, text } = readConfigFile(path);
  return { data: parseManifestText(text, file), text };
}
