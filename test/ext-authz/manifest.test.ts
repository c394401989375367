import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { compileGlob, compileManifest, globToRegex, loadManifestFile, parseManifestText } from '../../ext-authz/src/manifest.js';
import { EXAMPLE_MANIFEST, ROOT } from '../helpers/paths.js';

const ERRORS = `${ROOT}test/fixtures/manifests/errors/`;

// One fixture per error case, each with the exact message an operator sees.
const CASES: Array<[string, string]> = [
  ["bad-action.yaml", "bad-action.yaml: expected one of \"allow\", \"deny\" (rules[0].action)"],
  ["bad-caller-id.yaml", "bad-caller-id.yaml: bad SPIFFE ID \"spiffe://cluster.local/ns/a/../sa/b\": path cannot contain dot segments (rules[0].callers[0])"],
  ["bad-caller-wildcard.yaml", "bad-caller-wildcard.yaml: bad caller pattern \"spiffe://cluster.local/ns/*/sa/b\": * is only allowed as a trailing /* (rules[0].callers[0])"],
  ["bad-glob-double-star.yaml", "bad-glob-double-star.yaml: bad path glob \"/v1/**/predict\": ** is only allowed as a trailing /** (rules[0].paths[0])"],
  ["bad-glob-encoded.yaml", "bad-glob-encoded.yaml: bad path glob \"/v1/models%2Fx\": character outside the normalised path alphabet (rules[0].paths[0])"],
  ["bad-glob-relative.yaml", "bad-glob-relative.yaml: bad path glob \"v1/models\": must start with \"/\" (rules[0].paths[0])"],
  ["bad-glob-semicolon.yaml", "bad-glob-semicolon.yaml: bad path glob \"/v1/models/*;v=2\": \";\" can never match unless requestPaths.allowSemicolons is true (rules[0].paths[0])"],
  ["bad-host-port.yaml", "bad-host-port.yaml: bad host pattern \"models.ml:8080\": ports are dropped before matching, leave them out (rules[0].hosts[0])"],
  ["bad-host-wildcard.yaml", "bad-host-wildcard.yaml: bad host pattern \"models.*.svc\": * is only allowed as a leading *. (rules[0].hosts[0])"],
  ["bad-method.yaml", "bad-method.yaml: bad method \"post\": use an upper-case HTTP method token (rules[0].methods[0])"],
  ["bad-quarantine-id.yaml", "bad-quarantine-id.yaml: bad SPIFFE ID \"http://cluster.local/ns/a\": scheme is missing or invalid (quarantine[0])"],
  ["bad-rule-name.yaml", "bad-rule-name.yaml: bad rule name \"Has Spaces\": use lowercase letters, digits, \".\", \"_\" and \"-\" (rules[0].name)"],
  ["bad-trust-domain.yaml", "bad-trust-domain.yaml: bad trust domain \"Cluster.Local\": trust domain characters are limited to lowercase letters, numbers, dots, dashes, and underscores (trustDomains[0])"],
  ["duplicate-rule-name.yaml", "duplicate-rule-name.yaml: duplicate rule name \"a\", first used at rules[0] (rules[2].name)"],
  ["duplicate-yaml-key.yaml", "duplicate-yaml-key.yaml: invalid YAML: Map keys must be unique (line 3)"],
  ["empty-methods.yaml", "empty-methods.yaml: must not be empty (rules[0].methods)"],
  ["empty-trust-domains.yaml", "empty-trust-domains.yaml: must not be empty (trustDomains)"],
  ["empty.yaml", "empty.yaml: manifest is empty (top level)"],
  ["invalid-yaml.yaml", "invalid-yaml.yaml: invalid YAML: Flow sequence in block collection must be sufficiently indented and end with a ] (line 2)"],
  ["missing-callers.yaml", "missing-callers.yaml: missing required key \"callers\" (rules[0])"],
  ["missing-trust-domains.yaml", "missing-trust-domains.yaml: missing required key \"trustDomains\" (top level)"],
  ["request-paths-not-boolean.yaml", "request-paths-not-boolean.yaml: expected boolean, got string (requestPaths.allowSemicolons)"],
  ["request-paths-not-object.yaml", "request-paths-not-object.yaml: expected object, got boolean (requestPaths)"],
  ["request-paths-unknown-key.yaml", "request-paths-unknown-key.yaml: unknown key \"allowSemicolon\" (requestPaths)"],
  ["endusers-bad-algorithm.yaml", "endusers-bad-algorithm.yaml: expected one of \"RS256\", \"ES256\", \"EdDSA\" (endUsers.issuers[0].algorithms[0])"],
  ["endusers-bad-claim.yaml", "endusers-bad-claim.yaml: bad claim name: use letters, digits, \"_\", \".\", \":\" and \"-\", starting with a letter or \"_\" (endUsers.claims.tenant)"],
  ["endusers-bad-delegate.yaml", "endusers-bad-delegate.yaml: bad SPIFFE ID \"spiffe://cluster.local/ns/gateway/sa/api-gateway/\": path cannot have a trailing slash (endUsers.delegates[0])"],
  ["endusers-duplicate-issuer.yaml", "endusers-duplicate-issuer.yaml: issuer \"https://a\" is listed twice, first at endUsers.issuers[0] (endUsers.issuers[1].issuer)"],
  ["endusers-jwks-both.yaml", "endusers-jwks-both.yaml: give exactly one of \"file\" or \"url\" (endUsers.issuers[0].jwks)"],
  ["endusers-jwks-file-escape.yaml", "endusers-jwks-file-escape.yaml: bad JWKS file \"../keys/jwks.json\": give a path relative to the manifest, without \"..\" (endUsers.issuers[0].jwks.file)"],
  ["endusers-jwks-file-refresh.yaml", "endusers-jwks-file-refresh.yaml: \"refreshSeconds\" and \"maxStaleSeconds\" go with \"url\"; a JWKS file is reloaded with the manifest (endUsers.issuers[0].jwks)"],
  ["endusers-jwks-http.yaml", "endusers-jwks-http.yaml: bad JWKS url \"http://auth.example.com/jwks.json\": use https (plain http only to localhost) (endUsers.issuers[0].jwks.url)"],
  ["endusers-no-issuers.yaml", "endusers-no-issuers.yaml: must not be empty (endUsers.issuers)"],
  ["endusers-skew-too-big.yaml", "endusers-skew-too-big.yaml: must be at most 300 (endUsers.clockSkewSeconds)"],
  ["endusers-unknown-key.yaml", "endusers-unknown-key.yaml: unknown key \"delegate\" (endUsers)"],
  ["rule-tenants-without-endusers.yaml", "rule-tenants-without-endusers.yaml: \"tenants\" needs an endUsers section (which tokens to trust) (rules[0].tenants)"],
  ["rule-tiers-without-claim.yaml", "rule-tiers-without-claim.yaml: \"tiers\" needs endUsers.claims.tier (which claim holds it) (rules[0].tiers)"],
  ["rule-unknown-tier.yaml", "rule-unknown-tier.yaml: unknown tier \"gold\": not in the tiers section (rules[0].tiers[1])"],
  ["tiers-bad-glob.yaml", "tiers-bad-glob.yaml: bad path glob \"/v1/models/**/predict\": ** is only allowed as a trailing /** (tiers.free.paths[0])"],
  ["tiers-bad-name.yaml", "tiers-bad-name.yaml: bad key \"Free Tier\": use lower-case letters, digits, \"_\" and \"-\" (tiers)"],
  ["tiers-bad-rate.yaml", "tiers-bad-rate.yaml: must be at least 1 (tiers.free.rateLimit.perSecond)"],
  ["tiers-without-endusers.yaml", "tiers-without-endusers.yaml: a tiers section needs an endUsers section (tiers come from verified tokens) (tiers)"],
  ["unknown-rule-key.yaml", "unknown-rule-key.yaml: unknown key \"calers\" (rules[0])"],
  ["unknown-top-key.yaml", "unknown-top-key.yaml: unknown key \"quarantined\" (top level)"],
  ["wrong-type.yaml", "wrong-type.yaml: expected array, got string (trustDomains)"],
];

describe('access manifest validation', () => {
  it.each(CASES)('rejects %s with an exact message', (file, message) => {
    const text = readFileSync(ERRORS + file, 'utf8');
    expect(() => parseManifestText(text, file)).toThrow(message);
    try {
      parseManifestText(text, file);
    } catch (err) {
      expect((err as Error).message).toBe(message);
    }
  });

  it('has a fixture for every case and a case for every fixture', async () => {
    const { readdirSync } = await import('node:fs');
    expect(readdirSync(ERRORS).sort()).toEqual(CASES.map(([f]) => f).sort());
  });

  it('names the file and the OS error for a missing manifest', () => {
    expect(() => loadManifestFile('/nonexistent/m.yaml')).toThrow('m.yaml: cannot read manifest: ENOENT (/nonexistent/m.yaml)');
  });

  it('compiles the example manifest into policy data', () => {
    const { data } = loadManifestFile(EXAMPLE_MANIFEST);
    expect(data.trust_domains).toEqual({ 'cluster.local': true });
    expect(data.quarantine).toEqual({ exact: { 'spiffe://cluster.local/ns/ml/sa/compromised': true }, prefixes: [] });
    const [predict, noAdmin, batch] = data.rules;
    expect(predict).toEqual({
      name: 'gateway-predicts',
      action: 'allow',
      callers: { exact: { 'spiffe://cluster.local/ns/gateway/sa/api-gateway': true }, prefixes: [] },
      hosts: { exact: { 'model-serving.ml.svc.cluster.local': true }, suffixes: ['.models.internal'] },
      methods: { POST: true },
      paths: [
        { segments: ['', 'v1', 'models', { prefix: '', suffix: ':predict' }], below: false, trailing_slash: false, regex: null },
        { segments: ['', 'v2', 'models', { prefix: '', suffix: '' }, 'infer'], below: false, trailing_slash: false, regex: null },
      ],
      tenants: null,
      tiers: null,
      scopes: null,
    });
    expect(noAdmin).toMatchObject({ action: 'deny', callers: { exact: {}, prefixes: ['spiffe://cluster.local/'] }, hosts: null, methods: null });
    expect(batch).toMatchObject({ callers: { exact: {}, prefixes: ['spiffe://cluster.local/ns/batch/'] } });
  });

  it('reads ";" as a path parameter unless the manifest says the model server does not', () => {
    const base = 'trustDomains: [td]\nrules:\n  - name: a\n    callers: [spiffe://td/x]\n    paths: ["/v1/models/*;v=2"]\n';
    expect(parseManifestText(base.replace('rules:', 'requestPaths: {allowSemicolons: true}\nrules:'), 'm.yaml').request_paths).toEqual({ allow_semicolons: true });
    expect(parseManifestText('trustDomains: [td]\nrules: []\n', 'm.yaml').request_paths).toEqual({ allow_semicolons: false });
    expect(() => parseManifestText(base, 'm.yaml')).toThrow(/can never match unless requestPaths.allowSemicolons/);
  });

  it('accepts JSON as well as YAML', () => {
    const data = compileManifest(JSON.parse('{"trustDomains":["td"],"rules":[]}'), 'm.json');
    expect(data.rules).toEqual([]);
  });
});

describe('path globs', () => {
  const matches = (glob: string, path: string) => new RegExp(globToRegex(glob)).test(path);

  it('lets * match any characters but a slash', () => {
    expect(matches('/v1/models/*:predict', '/v1/models/bert:predict')).toBe(true);
    expect(matches('/v1/models/*:predict', '/v1/models/a/b:predict')).toBe(false);
    expect(matches('/v1/models/*:predict', '/v1/models/bert:predictx')).toBe(false);
  });

  it('lets a trailing /** match the path itself and everything below it, but not siblings', () => {
    expect(matches('/admin/**', '/admin')).toBe(true);
    expect(matches('/admin/**', '/admin/')).toBe(true);
    expect(matches('/admin/**', '/admin/users/1')).toBe(true);
    expect(matches('/admin/**', '/administrator')).toBe(false);
    expect(matches('/**', '/anything/at/all')).toBe(true);
  });

  it('lets a deny glob also match the path with a trailing slash, which some servers serve as the same path', () => {
    const denies = (glob: string, path: string) => new RegExp(globToRegex(glob, true)).test(path);
    expect(denies('/v1/models/*/weights', '/v1/models/llama/weights/')).toBe(true);
    expect(denies('/v1/models/*/weights', '/v1/models/llama/weights')).toBe(true);
    expect(denies('/v1/models/*/weights', '/v1/models/llama/weights/x')).toBe(false);
    expect(matches('/v1/models/*/weights', '/v1/models/llama/weights/')).toBe(false);
  });

  it('compiles globs into segments for the policy, with no regex unless a segment has several stars', () => {
    expect(compileGlob('/admin/**')).toEqual({ segments: ['', 'admin'], below: true, trailing_slash: false, regex: null });
    expect(compileGlob('/v1/models/*/weights', true)).toEqual({ segments: ['', 'v1', 'models', { prefix: '', suffix: '' }, 'weights'], below: false, trailing_slash: true, regex: null });
    expect(compileGlob('/v1/models/', true).trailing_slash).toBe(false);
    expect(compileGlob('/**')).toEqual({ segments: [''], below: true, trailing_slash: false, regex: null });
    expect(compileGlob('/v1/*-*-v2:predict')).toEqual({ segments: [], below: false, trailing_slash: false, regex: '^/v1/[^/]*-[^/]*-v2:predict$' });
  });

  it('treats regex metacharacters in globs literally', () => {
    expect(matches('/v1/a.b', '/v1/axb')).toBe(false);
    expect(matches('/v1/(x)+', '/v1/(x)+')).toBe(true);
  });
});
