import type { CheckRequest, HttpRequest } from './check-request.js';
import type { EndUser } from './end-users/end-user.js';
import { AuthzError, REASONS } from './errors.js';
import { normaliseHost } from './host.js';
import { normalisePath, STRICT_PATHS, type PathOptions } from './path.js';
import { parseSpiffeId, spiffeIdError } from './spiffe.js';
import { lastXfccUri } from './xfcc.js';

/**
 * The policy input: a small, explicit projection of the CheckRequest. It is
 * all the policy can see, and (serialised) it is the cache key, so adding a
 * field here is the only way to make a decision depend on more of the
 * request.
 */
export interface PolicyInput {
  caller: {
    id: string;
    trust_domain: string;
    path: string;
    namespace: string | null;
    service_account: string | null;
  };
  /** "tcp" for checks from Envoy's network filter, which carry no HTTP section. */
  kind: 'http' | 'tcp';
  host: string | null;
  method: string | null;
  path: string | null;
  /** Only the request headers the operator listed, in sorted name order; null if none listed. */
  headers: Record<string, string | null> | null;
  /** The verified end user's claims, set after token verification; null without a token. */
  end_user: EndUser | null;
}

export interface InputOptions {
  /** Take the caller from the last x-forwarded-client-cert element instead of the mTLS peer. */
  readonly trustXfcc: boolean;
  /** Lower-case header names copied into the input, sorted. */
  readonly inputHeaders: readonly string[];
}

export const MAX_INPUT_HEADER_BYTES = 8192;
const METHOD = /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,32}$/;
const XFCC = 'x-forwarded-client-cert';

function invalidRequest(why: string): AuthzError {
  return new AuthzError(REASONS.invalid_request, why);
}

function headerValue(http: HttpRequest, name: string): string | undefined {
  const v = http.headers?.[name];
  if (v !== undefined) return v;
  // With encode_raw_headers Envoy sends header_map instead of headers.
  const list = http.header_map?.headers;
  if (!list) return undefined;
  const values: string[] = [];
  for (const h of list) {
    if (h.key === name) values.push(h.raw_value ? h.raw_value.toString('utf8') : (h.value ?? ''));
  }
  return values.length ? values.join(',') : undefined;
}

function callerId(req: CheckRequest, http: HttpRequest | null, opts: InputOptions): string {
  if (opts.trustXfcc) {
    const xfcc = http ? headerValue(http, XFCC) : undefined;
    if (xfcc === undefined || xfcc === '') throw new AuthzError(REASONS.no_identity, 'no x-forwarded-client-cert header');
    const uri = lastXfccUri(xfcc);
    if (uri === null) throw new AuthzError(REASONS.invalid_identity, 'x-forwarded-client-cert has no single URI in its last element');
    return uri;
  }
  const principal = req.attributes?.source?.principal;
  if (principal === undefined || principal === '') {
    throw new AuthzError(REASONS.no_identity, 'no source principal (is the listener requiring mTLS client certificates?)');
  }
  return principal;
}

/** Projects a CheckRequest onto the policy input, or throws an AuthzError with a deny reason. */
export function toPolicyInput(req: CheckRequest, opts: InputOptions, paths: PathOptions = STRICT_PATHS): PolicyInput {
  if (req === null || typeof req !== 'object' || !req.attributes) throw invalidRequest('CheckRequest has no attributes');
  const http = req.attributes.request?.http ?? null;
  const id = callerId(req, http, opts);
  const spiffe = parseSpiffeId(id);
  if (spiffe === null) throw new AuthzError(REASONS.invalid_identity, spiffeIdError(id) ?? 'invalid SPIFFE ID');
  const caller = {
    id: spiffe.id,
    trust_domain: spiffe.trustDomain,
    path: spiffe.path,
    namespace: spiffe.namespace,
    service_account: spiffe.serviceAccount,
  };
  if (http === null) {
    return { caller, kind: 'tcp', host: null, method: null, path: null, headers: null, end_user: null };
  }
  try {
    const method = http.method ?? '';
    if (!METHOD.test(method)) throw invalidRequest(method === '' ? 'missing HTTP method' : 'malformed HTTP method');
    const path = normalisePath(http.path ?? '', paths);
    const host = normaliseHost(http.host ?? '');
    return { caller, kind: 'http', host, method, path, headers: listedHeaders(http, opts), end_user: null };
  } catch (err) {
    // The identity checked out: say who sent the bad route.
    if (err instanceof AuthzError) err.caller = caller.id;
    throw err;
  }
}

function listedHeaders(http: HttpRequest, opts: InputOptions): Record<string, string | null> | null {
  if (opts.inputHeaders.length === 0) return null;
  const headers: Record<string, string | null> = {};
  for (const name of opts.inputHeaders) {
    const v = headerValue(http, name);
    if (v !== undefined && v.length > MAX_INPUT_HEADER_BYTES) {
      throw invalidRequest(`header ${name} longer than ${MAX_INPUT_HEADER_BYTES} bytes`);
    }
    headers[name] = v ?? null;
  }
  return headers;
}
