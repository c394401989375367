import { describe, expect, it } from 'vitest';
import { ManifestError } from '../../ext-authz/src/manifest.js';
import { DEFAULTS } from '../../istio/render/deployment-schema.js';
import { parseRenderInput } from '../../istio/render/load-input.js';
import { EXAMPLE_DIR, exampleInput, separateInput, toSeparateForm, variantInput, variantText, withoutTierQuotas } from './helpers/example.js';

// One edit per error, each with the exact message an operator sees: same `<file>: <what> (<where>)` style as the access manifest.
const CASES: Array<[string, (d: Record<string, any>) => void, string]> = [
  ['unknown top key', (d) => { d.namespaces = 'x'; }, 'unknown key "namespaces" (deployment)'],
  ['misspelt key beats the missing one', (d) => { d.workload = d.workloads; delete d.workloads; }, 'unknown key "workload" (deployment)'],
  ['missing namespace', (d) => { delete d.namespace; }, 'missing required key "namespace" (deployment)'],
  ['bad namespace', (d) => { d.namespace = 'Infergate'; }, 'bad namespace: use a DNS label (lowercase letters, digits, "-", at most 63) (deployment.namespace)'],
  ['unpinned image', (d) => { d.server.image = 'ghcr.io/infergate/infergate-authz:latest'; }, 'bad image: pin a tag (not latest) or a sha256 digest (deployment.server.image)'],
  ['untagged image', (d) => { d.server.image = 'ghcr.io/infergate/infergate-authz'; }, 'bad image: pin a tag (not latest) or a sha256 digest (deployment.server.image)'],
  ['one replica', (d) => { d.server.replicas = 1; }, 'must be at least 2 (deployment.server.replicas)'],
  ['bad cpu', (d) => { d.server.resources.limits.cpu = '1 core'; }, 'bad cpu quantity: use millicores like "250m" or cores like "1" (deployment.server.resources.limits.cpu)'],
  ['bad memory', (d) => { d.server.resources.requests.memory = '128MB'; }, 'bad memory quantity: use Ki, Mi or Gi, like "256Mi" (deployment.server.resources.requests.memory)'],
  ['bad timeout', (d) => { d.provider.timeout = '500ms'; }, 'bad timeout: use seconds with an "s" suffix, like "0.5s" (deployment.provider.timeout)'],
  ['no workloads', (d) => { d.workloads = []; }, 'must not be empty (deployment.workloads)'],
  ['empty selector', (d) => { d.workloads[0].selector = {}; }, 'must not be empty: an empty selector would protect every workload in the namespace (deployment.workloads[0].selector)'],
  ['bad label key', (d) => { d.workloads[0].selector = { 'bad key': 'x' }; }, 'bad label key "bad key": name must be 1-63 letters, digits, "-", "_", "." starting and ending alphanumeric (deployment.workloads[0].selector.bad key)'],
  ['duplicate workload', (d) => { d.workloads[1].name = 'model-serving'; }, 'duplicate workload name "model-serving", first used at workloads[0] (deployment.workloads[1].name)'],
  ['workload in server namespace', (d) => { d.workloads[0].namespace = 'infergate-system'; }, 'workload namespace "infergate-system" is the ext_authz server\'s namespace; protect workloads elsewhere (deployment.workloads[0].namespace)'],
  ['bad port', (d) => { d.workloads[1].ports = [0]; }, 'must be at least 1 (deployment.workloads[1].ports[0])'],
  ['unknown payload key', (d) => { d.filters.payloadLimit.config.maxBytes = 1; }, 'unknown key "maxBytes" (deployment.filters.payloadLimit.config)'],
  ['route with prefix and path', (d) => { d.filters.payloadLimit.config.routes[0].path = '/x'; }, 'needs exactly one of "prefix" or "path" (deployment.filters.payloadLimit.config.routes[0])'],
  ['prefix with wildcard', (d) => { d.filters.payloadLimit.config.routes[0].prefix = '/v2/*'; }, '"prefix" takes no wildcard; use "path" (deployment.filters.payloadLimit.config.routes[0].prefix)'],
  ['negative limit', (d) => { d.filters.payloadLimit.config.defaultMaxBytes = -1; }, 'must be at least 0 (deployment.filters.payloadLimit.config.defaultMaxBytes)'],
  ['fractional limit', (d) => { d.filters.payloadLimit.config.defaultMaxBytes = 1.5; }, 'expected int, got number (deployment.filters.payloadLimit.config.defaultMaxBytes)'],
  ['bad identity', (d) => { d.filters.rateLimit.config.identity = 'spiffe'; }, 'identity must be "peer_certificate" or "header:<name>" (deployment.filters.rateLimit.config.identity)'],
  ['missing default limit', (d) => { delete d.filters.rateLimit.config.default; }, 'missing required key "default" (deployment.filters.rateLimit.config)'],
  ['zero rate', (d) => { d.filters.rateLimit.config.default.perSecond = 0; }, 'must be at least 1 (deployment.filters.rateLimit.config.default.perSecond)'],
  ['bad caller match', (d) => { d.filters.rateLimit.config.callers[1].match = 'spiffe://cluster.local/*/sa/x'; }, 'match must be an identity, or a prefix ending in a single trailing * (deployment.filters.rateLimit.config.callers[1].match)'],
  ['repeated caller match', (d) => { d.filters.rateLimit.config.callers.push({ ...d.filters.rateLimit.config.callers[0] }); }, `match repeats callers[0].match (deployment.filters.rateLimit.config.callers[2].match)`],
  ['over-long caller match', (d) => { d.filters.rateLimit.config.callers[0].match = `spiffe://cluster.local/${'a'.repeat(2048)}`; }, 'match is longer than 2048 bytes, the longest identity (deployment.filters.rateLimit.config.callers[0].match)'],
  ['negative idle seconds', (d) => { d.filters.rateLimit.config.idleSeconds = -1; }, 'must be at least 0 (deployment.filters.rateLimit.config.idleSeconds)'],
  ['idle seconds over an hour', (d) => { d.filters.rateLimit.config.idleSeconds = 3601; }, 'must be at most 3600 (deployment.filters.rateLimit.config.idleSeconds)'],
  ['too many buckets', (d) => { d.filters.rateLimit.config.maxCallers = 1_000_000; }, 'maxCallers (1000000) plus one bucket for each of the 1 exact callers rules must be at most 1000000 (deployment.filters.rateLimit.config.maxCallers)'],
  ['bad unauthenticated', (d) => { d.filters.rateLimit.config.unauthenticated = 'limit'; }, 'expected one of "deny", "allow" (deployment.filters.rateLimit.config.unauthenticated)'],
  ['bad wasm url', (d) => { d.filters.guard.url = 'ghcr.io/x:1'; }, 'bad url: use oci://, https:// or file:// (deployment.filters.guard.url)'],
  ['bad sha256', (d) => { d.filters.guard.sha256 = { 'guard-no-response-body': 'ABC' }; }, 'bad sha256: 64 lowercase hex digits (deployment.filters.guard.sha256.guard-no-response-body)'],
  // Guard builds (istio/render/guard-modules.ts): render picks one; url, sha256 and a pinned module must fit that choice.
  ['guard sha256 as one digest', (d) => { d.filters.guard.sha256 = 'a'.repeat(64); }, 'expected record, got string (deployment.filters.guard.sha256)'],
  ['guard sha256 for an unknown build', (d) => { d.filters.guard.sha256 = { 'guard-lite': 'a'.repeat(64) }; },
    'unknown guard build "guard-lite": the builds are guard-request-only, guard-no-response-body, guard (deployment.filters.guard.sha256.guard-lite)'],
  ['guard sha256 without the build deployed', (d) => { d.filters.guard.sha256 = { guard: 'a'.repeat(64) }; },
    'no sha256 for guard-no-response-body, the guard build this configuration deploys: add it, or the module would go unpinned (deployment.filters.guard.sha256)'],
  ['guard url without {module}', (d) => { d.filters.guard.url = 'oci://ghcr.io/infergate/guard:0.1.0'; },
    "url has no {module}: each guard build (guard-request-only, guard-no-response-body, guard) is its own file, and render picks the one the configuration needs; put {module} where the build's name goes, or pin one build with filters.guard.module (deployment.filters.guard.url)"],
  ['unknown guard build', (d) => { d.filters.guard.module = 'guard-lite'; }, 'expected one of "guard-request-only", "guard-no-response-body", "guard" (deployment.filters.guard.module)'],
  ['pinned guard build without the budget headers\' callback', (d) => { d.filters.guard.module = 'guard-request-only'; },
    'rateLimit.config.budgetHeaders (true, the default) needs the response-headers callback, which guard-request-only does not export: use guard-no-response-body or guard, or set budgetHeaders to false (deployment.filters.guard.module)'],
  ['pinned guard build without the response cap\'s callbacks', (d) => { d.filters.guard.module = 'guard-no-response-body'; d.filters.payloadLimit.config.maxResponseBytes = 64; },
    'payloadLimit.config.maxResponseBytes (64) needs the response-headers and response-body callbacks, which guard-no-response-body does not export: use guard (deployment.filters.guard.module)'],
  ['bad budgetHeaders', (d) => { d.filters.rateLimit.config.budgetHeaders = 'off'; }, 'expected boolean, got string (deployment.filters.rateLimit.config.budgetHeaders)'],
  ['bad wasm url, separate form', (d) => { toSeparateForm(d); d.filters.rateLimit.url = 'ghcr.io/x:1'; }, 'bad url: use oci://, https:// or file:// (deployment.filters.rateLimit.url)'],
  ['bad sha256, separate form', (d) => { toSeparateForm(d); d.filters.payloadLimit.sha256 = 'ABC'; }, 'bad sha256: 64 lowercase hex digits (deployment.filters.payloadLimit.sha256)'],
  ['unknown filter form', (d) => { d.filters.form = 'combined'; }, 'expected one of "guard", "separate" (deployment.filters.form)'],
  ['unknown guard key', (d) => { d.filters.guard.config = {}; }, 'unknown key "config" (deployment.filters.guard)'],
  ['per-filter url with the guard form', (d) => { d.filters.rateLimit.url = 'oci://ghcr.io/infergate/rate-limit:0.1.0'; }, 'url is per module: with filters.form guard (the default) set filters.guard.url (deployment.filters.rateLimit.url)'],
  ['per-filter sha256 with the guard form', (d) => { d.filters.form = 'guard'; d.filters.payloadLimit.sha256 = 'a'.repeat(64); }, 'sha256 is per module: with filters.form guard (the default) set filters.guard.sha256 (deployment.filters.payloadLimit.sha256)'],
  ['guard with the separate form', (d) => { d.filters.form = 'separate'; }, 'guard is only for filters.form guard: with filters.form separate set url and sha256 on rateLimit and payloadLimit (deployment.filters.guard)'],
  ['guard with nothing to check', (d) => { delete d.filters.rateLimit; delete d.filters.payloadLimit; }, 'guard has nothing to check: configure filters.rateLimit, filters.payloadLimit or both (deployment.filters.guard)'],
  // Tier quotas (istio/render/tier-quotas.ts): the example's tiers have a rateLimit each.
  ['tier quotas with another rate-limit identity', (d) => { d.filters.rateLimit.config.identity = 'peer_certificate'; },
    'tier quotas (tiers.free.rateLimit) need identity "header:x-infergate-quota", the quota key the server sets; got "peer_certificate" (deployment.filters.rateLimit.config.identity)'],
  ['tier quotas with the caller header as identity', (d) => { d.filters.rateLimit.config.identity = 'header:x-infergate-caller'; },
    'tier quotas (tiers.free.rateLimit) need identity "header:x-infergate-quota", the quota key the server sets; got "header:x-infergate-caller" (deployment.filters.rateLimit.config.identity)'],
  ['tier quotas without a rate limit', (d) => { delete d.filters.rateLimit; },
    'a tier quota needs the rate-limit filter: configure deployment.filters.rateLimit with identity "header:x-infergate-quota" (tiers.free.rateLimit)'],
  ['a callers rule for a tier that has a quota', (d) => { d.filters.rateLimit.config.callers.push({ match: 'tenant/premium/*', perSecond: 9, burst: 9 }); },
    'match "tenant/premium/*" is tier premium\'s quota, which tiers.premium.rateLimit sets; remove one of the two (deployment.filters.rateLimit.config.callers[2].match)'],
  ['a SPIFFE ID match under the quota identity', (d) => { d.filters.rateLimit.config.callers[1].match = 'spiffe://cluster.local/ns/batch/*'; },
    'match "spiffe://cluster.local/ns/batch/*" can never match: with identity "header:x-infergate-quota" the rate limit keys on "workload/<spiffe id>" or "tenant/<tier>/<tenant>"; write "workload/spiffe://cluster.local/ns/batch/*" (deployment.filters.rateLimit.config.callers[1].match)'],
  ['another match no quota key has', (d) => { d.filters.rateLimit.config.callers[0].match = 'acme'; },
    'match "acme" can never match: with identity "header:x-infergate-quota" the rate limit keys on "workload/<spiffe id>" or "tenant/<tier>/<tenant>" (deployment.filters.rateLimit.config.callers[0].match)'],
];

describe('deployment section validation', () => {
  it.each(CASES)('rejects %s with an exact message', (_name, edit, message) => {
    const text = variantText(edit);
    expect(() => parseRenderInput(text, 'infergate.yaml', EXAMPLE_DIR)).toThrow(new ManifestError('infergate.yaml', message.replace(/ \(([^()]*)\)$/, ''), message.match(/\(([^()]*)\)$/)![1]!));
  });

  it('reports access-manifest errors exactly as the server does', () => {
    const text = variantText(() => {}).replace('action: deny', 'action: block');
    expect(() => parseRenderInput(text, 'infergate.yaml', EXAMPLE_DIR)).toThrow('infergate.yaml: expected one of "allow", "deny" (rules[2].action)');
  });

  it('requires a deployment section', () => {
    const text = 'trustDomains: [cluster.local]\nrules: []\n';
    expect(() => parseRenderInput(text, 'm.yaml', EXAMPLE_DIR)).toThrow('m.yaml: missing required key "deployment" (top level)');
  });

  it('gives YAML errors with the line', () => {
    expect(() => parseRenderInput('trustDomains: [a\nrules: []\n', 'm.yaml', EXAMPLE_DIR)).toThrow(/^m\.yaml: invalid YAML: .* \(line \d\)$/);
  });

  it('fills in defaults', () => {
    const text = variantText((d) => {
      delete d.server.replicas;
      delete d.server.resources;
      delete d.provider;
      delete d.filters.guard;
    });
    const { deployment } = parseRenderInput(text, 'infergate.yaml', EXAMPLE_DIR);
    expect(deployment.server).toEqual({ image: 'ghcr.io/infergate/infergate-authz:0.1.0', replicas: 2, resources: DEFAULTS.resources, dryRun: false, logLevel: 'info' });
    expect(deployment.provider).toEqual({ name: 'infergate', timeout: '0.5s', statusOnError: null });
    expect(deployment.filters).toMatchObject({ form: 'guard', moduleDir: '/var/local/lib/wasm-filters', guard: { module: 'guard-no-response-body', url: 'file:///var/local/lib/wasm-filters/guard-no-response-body.wasm', sha256: null } });
    const separate = separateInput((d) => { delete d.filters.payloadLimit.url; d.filters.moduleDir = '/opt/wasm'; }).deployment.filters;
    expect(separate.form).toBe('separate');
    expect(separate.payloadLimit).toMatchObject({ url: 'file:///opt/wasm/payload-limit.wasm', sha256: null });
    expect(separate.rateLimit).toMatchObject({ url: 'oci://ghcr.io/infergate/rate-limit:0.1.0', sha256: null });
  });

  it('resolves each filter form to exactly the modules it loads', () => {
    const example = exampleInput().deployment.filters;
    expect(example).toEqual({
      form: 'guard',
      moduleDir: '/var/local/lib/wasm-filters',
      guard: { module: 'guard-no-response-body', url: 'oci://ghcr.io/infergate/guard-no-response-body:0.1.0', sha256: null },
      payloadLimit: { config: expect.objectContaining({ defaultMaxBytes: 1048576 }) },
      rateLimit: { config: expect.objectContaining({ identity: 'header:x-infergate-quota' }) },
    });
    const pinned = variantInput((d) => { d.filters.guard.sha256 = { 'guard-no-response-body': 'b'.repeat(64), guard: 'c'.repeat(64) }; }).deployment.filters;
    expect(pinned.form === 'guard' && pinned.guard).toEqual({ module: 'guard-no-response-body', url: 'oci://ghcr.io/infergate/guard-no-response-body:0.1.0', sha256: 'b'.repeat(64) });
    const separate = separateInput().deployment.filters;
    expect(separate).toEqual({
      form: 'separate',
      moduleDir: '/var/local/lib/wasm-filters',
      payloadLimit: { url: 'oci://ghcr.io/infergate/payload-limit:0.1.0', sha256: null, config: example.payloadLimit!.config },
      rateLimit: { url: 'oci://ghcr.io/infergate/rate-limit:0.1.0', sha256: null, config: example.rateLimit!.config },
    });
    expect(variantInput((d) => { delete d.filters; }, withoutTierQuotas).deployment.filters).toEqual({
      form: 'guard', moduleDir: '/var/local/lib/wasm-filters', guard: { module: 'guard-request-only', url: 'file:///var/local/lib/wasm-filters/guard-request-only.wasm', sha256: null }, payloadLimit: null, rateLimit: null,
    });
  });

  it('picks the smallest guard build the configuration needs, or the one pinned, and fills the url template with it', () => {
    const guardOf = (edit: (d: Record<string, any>) => void) => {
      const f = variantInput(edit).deployment.filters;
      if (f.form !== 'guard') throw new Error('expected the guard form');
      return f.guard;
    };
    // the example: budget headers (the default), no response cap
    expect(guardOf(() => {}).module).toBe('guard-no-response-body');
    expect(guardOf((d) => { d.filters.rateLimit.config.budgetHeaders = false; })).toEqual({ module: 'guard-request-only', url: 'oci://ghcr.io/infergate/guard-request-only:0.1.0', sha256: null });
    expect(guardOf((d) => { d.filters.rateLimit.config.budgetHeaders = false; d.filters.payloadLimit.config.maxResponseBytes = 1; }).module).toBe('guard');
    expect(guardOf((d) => { d.filters.payloadLimit.config.maxResponseBytes = 1; }).module).toBe('guard');
    // a pinned build is deployed whatever it could have been; a fixed url is then fine
    expect(guardOf((d) => { d.filters.guard = { module: 'guard', url: 'https://example.com/guard.wasm', sha256: { guard: 'd'.repeat(64) } }; }))
      .toEqual({ module: 'guard', url: 'https://example.com/guard.wasm', sha256: 'd'.repeat(64) });
    // {module} may appear more than once (a path and a tag, say)
    expect(guardOf((d) => { d.filters.guard.url = 'https://example.com/{module}/{module}.wasm'; }).url).toBe('https://example.com/guard-no-response-body/guard-no-response-body.wasm');
  });

  it('keeps the access part, comments included, and drops the deployment section from what the server reads', () => {
    const input = exampleInput();
    expect(input.accessManifest).toContain('# infergate.yaml: one file for who may call which model API');
    expect(input.accessManifest).not.toMatch(/^deployment:/m);
    expect(input.accessManifest).not.toContain('workloads');
    expect(input.accessManifest).toContain('paths: ["/v1/models/*:predict", "/v2/models/*/infer"]');
    expect(input.policy.rules.map((r) => r.name)).toEqual(['tenants-generate', 'gateway-predicts', 'no-admin', 'batch-reads', 'mesh-probes']);
  });
});
