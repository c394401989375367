import fc from 'fast-check';
import { OPERATOR } from './manifest.js';
import type { RefRequest } from './reference.js';

/**
 * Generators for CheckRequests as Envoy's ext_authz filter sends them. Each
 * part is built from a grammar: mostly real-looking values from small pools
 * (so manifest rules match often and the same value comes back, which is
 * what exercises the cache), mixed with the hostile tokens that
 * normalisation bugs are made of.
 */

// ---------------------------------------------------------------- identities

/** Valid SPIFFE IDs: every caller the manifest names, plus near neighbours that must not match its patterns. */
export const VALID_IDS = [
  'spiffe://cluster.local/ns/gateway/sa/api-gateway',
  'spiffe://cluster.local/ns/batch/sa/etl',
  'spiffe://cluster.local/ns/batch/sa/trainer',
  'spiffe://cluster.local/ns/batch/sa/etl/extra',
  'spiffe://cluster.local/ns/batch',
  'spiffe://cluster.local/ns/batchx/sa/etl',
  'spiffe://cluster.local/ns/Batch/sa/etl',
  'spiffe://cluster.local/ns/ml/sa/compromised',
  'spiffe://cluster.local/ns/ml/sa/compromised2',
  'spiffe://cluster.local/ns/ops/sa/admin',
  'spiffe://cluster.local/ns/ops/sa/admin.v2',
  'spiffe://cluster.local/ns/monitoring/sa/prober',
  'spiffe://cluster.local/ns/other/sa/app',
  'spiffe://cluster.local',
  'spiffe://partner.example/ns/partner/sa/reader',
  'spiffe://partner.example/ns/partner/sa/writer',
  'spiffe://partner.example/ns/untrusted/sa/x',
  'spiffe://evil.example/ns/ops/sa/admin',
  'spiffe://cluster.local.evil/ns/ops/sa/admin',
];

function insertAt(s: string, i: number, piece: string): string {
  return s.slice(0, i) + piece + s.slice(i);
}

/** Index just after the trust domain, where the SPIFFE path starts. */
function pathStart(id: string): number {
  const slash = id.indexOf('/', 'spiffe://'.length);
  return slash === -1 ? id.length : slash;
}

function hex2(b: number, upper: boolean): string {
  const h = b.toString(16).padStart(2, '0');
  return upper ? h.toUpperCase() : h;
}

/** Each mutation turns a valid ID into one the SPIFFE ID standard (as docs/ext-authz.md states it) refuses. */
const ID_MUTATIONS: ReadonlyArray<(id: string, n: number) => string> = [
  // Uppercase in the trust domain.
  (id, n) => {
    const start = 'spiffe://'.length;
    const end = pathStart(id);
    const i = start + (n % Math.max(1, end - start));
    return id.slice(0, i) + id.charAt(i).toUpperCase() + id.slice(i + 1);
  },
  (id) => id.slice(0, 'spiffe://'.length) + id.slice('spiffe://'.length, pathStart(id)).toUpperCase() + id.slice(pathStart(id)),
  // A percent-escape anywhere after the scheme, including an escaped slash or dot.
  (id, n) => {
    const start = 'spiffe://'.length;
    const i = start + (n % (id.length - start));
    return id.slice(0, i) + '%' + hex2(id.charCodeAt(i), n % 2 === 0) + id.slice(i + 1);
  },
  (id) => id.replace('/sa/', '/sa%2F'),
  (id) => id.replace('/ns/', '/%2e%2e/ns/'),
  // Dot and empty segments, raw.
  (id, n) => insertAt(id, segmentBoundary(id, n), ['/..', '/.', '/', '/../..'][n % 4]!),
  (id) => `${id}/..`,
  (id) => `${id}/.`,
  // Trailing slash, query, fragment.
  (id) => `${id}/`,
  (id, n) => `${id}${['?x=1', '?', '#frag', '#', '?a#b'][n % 5]}`,
  (id, n) => insertAt(id, pathStart(id), ['?x', '#f'][n % 2]!),
  // Port and userinfo in the authority.
  (id, n) => insertAt(id, pathStart(id), [':443', ':', ':0'][n % 3]!),
  (id, n) => insertAt(id, 'spiffe://'.length, ['user@', 'user:pw@', '@'][n % 3]!),
  // Other schemes and broken scheme separators.
  (id, n) => ['SPIFFE://', 'Spiffe://', 'spiffe:/', 'spiffe:', 'spiffe:///', 'https://', 'http://', 'urn:spiffe:', ' spiffe://', 'spiffe//', 'spiffe:\\\\'][n % 11]! + id.slice('spiffe://'.length),
  // Over-long: past 2048 bytes with valid segments only.
  (id, n) => id + '/segment'.repeat(Math.max(0, Math.ceil((2049 - id.length) / 8)) + (n % 3)),
  (id) => id + '/' + 'é'.repeat(1100),
  // A character outside the alphabets, raw.
  (id, n) => {
    const start = 'spiffe://'.length;
    const i = start + (n % (id.length - start));
    return insertAt(id, i, [' ', '\n', '\0', '+', '*', '~', '%', '\\', 'é', '\u212A', '\u0130', '\uFF41', '!', '$', ',', ';', '='][n % 17]!);
  },
  // Surrounding whitespace, empty trust domain.
  (id, n) => [` ${id}`, `${id} `, `${id}\n`, `${id}\t`, `\u00a0${id}`][n % 5]!,
  (id) => 'spiffe://' + id.slice(pathStart(id)),
];

function segmentBoundary(id: string, n: number): number {
  const boundaries: number[] = [];
  for (let i = pathStart(id); i <= id.length; i++) if (i === id.length || id[i] === '/') boundaries.push(i);
  return boundaries[n % boundaries.length]!;
}

/** IDs that are not valid SPIFFE IDs: a valid one, mutated once or twice, plus a few fixed oddities. */
export const invalidIdArb: fc.Arbitrary<string> = fc.oneof(
  { weight: 10, arbitrary: fc.tuple(fc.constantFrom(...VALID_IDS), fc.array(fc.tuple(fc.nat(ID_MUTATIONS.length - 1), fc.nat(1000)), { minLength: 1, maxLength: 2 })).map(([id, ms]) => ms.reduce((acc, [m, n]) => ID_MUTATIONS[m]!(acc, n), id)) },
  { weight: 1, arbitrary: fc.constantFrom('spiffe://', 'spiffe:///', 'cluster.local/ns/ops/sa/admin', '/ns/ops/sa/admin', 'spiffe', '*', 'spiffe://*', 'spiffe://cluster.local/*') },
  { weight: 1, arbitrary: fc.string({ maxLength: 40 }) },
);

// OPERATOR's rule has no route: every well-formed route of theirs is allowed unless a deny rule says no,
// which is what makes "the reference allows => the server allows" a test of path and host acceptance.
export const principalArb: fc.Arbitrary<string | undefined> = fc.oneof(
  { weight: 6, arbitrary: fc.constant(OPERATOR) },
  { weight: 12, arbitrary: fc.constantFrom(...VALID_IDS) },
  { weight: 3, arbitrary: invalidIdArb },
  { weight: 1, arbitrary: fc.constantFrom(undefined, '') },
);

// ---------------------------------------------------------------- paths

/** Real-looking request paths, many of which the manifest names. */
const REAL_PATHS = [
  '/v1/models/bert:predict',
  '/v1/models/llama:predict',
  '/v2/models/bert/infer',
  '/v2/models/llama/infer',
  '/v1/models/llama/weights/shard-0',
  '/v1/models/llama/weights',
  '/v1/models/llama/export',
  '/v1/models/llama',
  '/v1/models/bert:delete',
  '/v1/models/',
  '/v1/models',
  '/admin/users',
  '/admin',
  '/healthz',
  '/.well-known/ready',
  '/',
];

const NAMES = ['v1', 'v2', 'models', 'llama', 'bert', 'weights', 'shard-0', 'bert:predict', 'llama:predict', 'infer', 'export', 'admin', 'users', 'healthz', '.well-known', 'bert:delete'];

/** The tokens that make normalisation differ between servers, raw and encoded. */
export const HOSTILE_TOKENS = [
  '..', '.', '', ';', ';jsessionid=1', '..;', 'weights;x=1', ';/admin',
  '%2e%2e', '%2E.', '.%2e', '%2e', '%2E',
  '%2F', '%2f', '%5C', '%5c', '%25', '%2541', '%3B', '%3b', '%3F', '%23', '%00', '%0A', '%0d', '%7F', '%7f', '%09',
  '%C0%AE', '%C0%AF', '%C3', '%C3%A9', '%E2%80%AE', '%EF%BC%8F', '%ED%A0%80', '%F4%90%80%80', '%E2%84%AA', '%C2%85',
  '%61', '%77eights', '%41dmin', '%61dmin', '%20', '%2B', '%7E',
  '\\', ' ', '\t', 'é', '\u212A', '\u0000', '%', '%2', '%zz', '%u002e', '%%32%65',
  '?q', '?q=/../admin', '#f', '?', '#',
  '..foo', 'foo..', '...', 'Weights', 'ADMIN', '+', '~user', '*', ':', '@', '!', '$',
];

/** Replaces one character of `s` (not a slash) with its %XX escape, in either hex case. */
function percentEncodeOne(s: string, n: number): string {
  const spots: number[] = [];
  for (let i = 0; i < s.length; i++) if (s[i] !== '/' && s.charCodeAt(i) < 0x80) spots.push(i);
  if (spots.length === 0) return s;
  const i = spots[n % spots.length]!;
  return s.slice(0, i) + '%' + hex2(s.charCodeAt(i), n % 3 !== 0) + s.slice(i + 1);
}

type PathEdit = (segments: string[], token: string, n: number) => string[];

const PATH_EDITS: readonly PathEdit[] = [
  (segs, token, n) => segs.map((s, i) => (i === 1 + (n % Math.max(1, segs.length - 1)) ? token : s)),
  (segs, token, n) => [...segs.slice(0, 1 + (n % segs.length)), token, ...segs.slice(1 + (n % segs.length))],
  (segs, token, n) => segs.map((s, i) => (i === 1 + (n % Math.max(1, segs.length - 1)) ? s + token : s)),
  (segs, _token, n) => segs.map((s, i) => (i === 1 + (n % Math.max(1, segs.length - 1)) ? percentEncodeOne(s, n) : s)),
  (segs) => [...segs, ''],
  (segs, token) => [...segs.slice(0, -1), segs[segs.length - 1] + token],
];

const tokenArb = fc.constantFrom(...HOSTILE_TOKENS);

/** A real path with zero to three edits: a token replacing, inserted into or appended to a segment, or a character percent-encoded. */
const editedPathArb = fc
  .tuple(fc.constantFrom(...REAL_PATHS), fc.array(fc.tuple(fc.nat(PATH_EDITS.length - 1), tokenArb, fc.nat(1000)), { maxLength: 3 }))
  .map(([path, edits]) => edits.reduce((segs, [e, token, n]) => PATH_EDITS[e]!(segs, token, n), path.split('/')).join('/'));

const segmentArb = fc.oneof({ weight: 3, arbitrary: fc.constantFrom(...NAMES) }, { weight: 1, arbitrary: tokenArb });

/** Segments from names and tokens in any order. */
const freePathArb = fc
  .tuple(fc.array(segmentArb, { maxLength: 6 }), fc.boolean())
  .map(([segs, trailing]) => '/' + segs.join('/') + (trailing && segs.length > 0 ? '/' : ''));

const ODD_TARGETS = ['', 'admin', '*', 'http://evil/admin', 'https://model-serving/v1/models/bert:predict', '//admin', '//admin/users', '///', '/' + 'a'.repeat(8191), '/' + 'a'.repeat(8192), '/' + 'a'.repeat(8191) + '?' + 'q'.repeat(100)];

export const pathArb: fc.Arbitrary<string> = fc.oneof(
  { weight: 6, arbitrary: editedPathArb },
  { weight: 2, arbitrary: freePathArb },
  { weight: 1, arbitrary: fc.constantFrom(...ODD_TARGETS) },
);

// ---------------------------------------------------------------- hosts

const REAL_HOSTS = ['model-serving.ml.svc.cluster.local', 'kserve.models.internal', 'a.b.models.internal', 'models.internal', 'other.ml.svc', 'evilmodels.internal'];

/** Characters a DNS name cannot hold, including non-ASCII letters that lower-case (or not) to ASCII ones. */
const BAD_HOST_CHARS = [' ', '/', '@', '\\', '%', '*', '\0', '\t', 'é', '\u212A', '\u0130', '\u0131', '\u017F', '\uFF41', '[', ']', '?', '#', ','];

const HOST_MUTATIONS: ReadonlyArray<(h: string, n: number) => string> = [
  // Case: random letters upper-cased.
  (h, n) => [...h].map((c, i) => ((n >> (i % 10)) & 1 ? c.toUpperCase() : c)).join(''),
  (h) => h.toUpperCase(),
  // Ports, good and bad.
  (h, n) => h + [':8080', ':0', ':65535', ':99999', ':123456', ':', ':http', ':80:80', ': 80', ':-1'][n % 10],
  // Trailing and leading dots.
  (h, n) => h + ['.', '..', '.:8080'][n % 3],
  (h) => `.${h}`,
  // A letter replaced by a non-ASCII one that JavaScript lower-cases to ASCII (KELVIN SIGN -> k),
  // to something else, or not at all: none of them is in a DNS name.
  (h, n) => {
    const i = n % h.length;
    const c = ['\u212A', '\u212B', '\u0130', '\u0131', '\u017F', '\uFF41', '\u0399'][Math.floor(n / h.length) % 7]!;
    return h.slice(0, i) + c + h.slice(i + 1);
  },
  // A bad character replacing or inserted at any position.
  (h, n) => {
    const i = n % h.length;
    const c = BAD_HOST_CHARS[Math.floor(n / h.length) % BAD_HOST_CHARS.length]!;
    return n % 2 === 0 ? h.slice(0, i) + c + h.slice(i + 1) : insertAt(h, i, c);
  },
];

const ODD_HOSTS = ['', '[::1]', '[::1]:8443', '[::ffff:127.0.0.1]', '[::g]', '[::1', '[]', '[::1]x', 'x'.repeat(256), 'a'.repeat(255), 'a'.repeat(255) + '.', ':8080', '.', '..', '127.0.0.1', '127.0.0.1:9'];

export const hostArb: fc.Arbitrary<string> = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(...REAL_HOSTS) },
  { weight: 4, arbitrary: fc.tuple(fc.constantFrom(...REAL_HOSTS), fc.nat(HOST_MUTATIONS.length - 1), fc.nat(10_000)).map(([h, m, n]) => HOST_MUTATIONS[m]!(h, n)) },
  { weight: 1, arbitrary: fc.constantFrom(...ODD_HOSTS) },
);

// ---------------------------------------------------------------- methods

const METHODS = ['GET', 'POST', 'HEAD', 'DELETE', 'PUT', 'PATCH', 'OPTIONS'];
const ODD_METHODS = ['get', 'Post', 'delete', '', 'GET ', ' GET', 'G ET', 'GE\nT', 'BREW', 'M-SEARCH', 'X'.repeat(32), 'X'.repeat(33), 'GET\u212A', 'PO\u017FT', 'GET;', 'GET/', '*', 'POST\0'];

export const methodArb: fc.Arbitrary<string> = fc.oneof({ weight: 6, arbitrary: fc.constantFrom(...METHODS) }, { weight: 1, arbitrary: fc.constantFrom(...ODD_METHODS) });

// ---------------------------------------------------------------- requests

/** A request as JSON with every non-printable or non-ASCII character escaped, so a failure shows what was sent (KELVIN SIGN is not K). */
export function show(req: RefRequest): string {
  return JSON.stringify(req).replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

export const httpArb = fc.record({ method: methodArb, path: pathArb, host: hostArb });

/** One check: mostly HTTP, sometimes from the network filter (no HTTP section). */
export const requestArb: fc.Arbitrary<RefRequest> = fc.record({
  principal: principalArb,
  http: fc.oneof({ weight: 19, arbitrary: httpArb }, { weight: 1, arbitrary: fc.constant(null) }),
});

/**
 * Checks that reach the policy (and so the cache): valid callers, methods,
 * paths and hosts, in spellings that normalise alike (an escaped letter, a
 * query, host case, port and trailing dot), so distinct requests share a key,
 * and with an extra trailing slash, which deny rules must still catch.
 */
export const wellFormedRequestArb: fc.Arbitrary<RefRequest> = fc.record({
  principal: fc.constantFrom(...VALID_IDS),
  http: fc.record({
    method: fc.constantFrom(...METHODS),
    // One extra trailing slash sometimes: deny globs must match it too.
    path: fc
      .tuple(fc.constantFrom(...REAL_PATHS), fc.nat(1000), fc.constantFrom('', '', '?a=1', '#x', '?q=/../admin'))
      .map(([p, n, q]) => (n % 3 === 0 ? percentEncodeOne(p, n) : p) + (n % 4 === 1 && !p.endsWith('/') ? '/' : '') + q),
    host: fc.tuple(fc.constantFrom(...REAL_HOSTS), fc.nat(1000), fc.constantFrom('', '', ':8080', '.', '.:80')).map(([h, n, suffix]) => (n % 4 === 0 ? h.toUpperCase() : h) + suffix),
  }),
});

/**
 * A long sequence of checks drawn from a small pool, so the same request
 * comes back (cache hits) and, with a pool larger than the cache, entries are
 * evicted and recomputed.
 */
export function sequenceArb(request: fc.Arbitrary<RefRequest>, minPool: number, maxPool: number, minLength: number, maxLength: number): fc.Arbitrary<RefRequest[]> {
  // The pool size is drawn explicitly: fast-check's default array sizes stay far below a cache of 64.
  return fc
    .integer({ min: minPool, max: maxPool })
    .chain((n) => fc.tuple(fc.array(request, { minLength: n, maxLength: n }), fc.array(fc.nat(), { minLength, maxLength, size: 'max' })))
    .map(([pool, picks]) => picks.map((p) => pool[p % pool.length]!));
}
