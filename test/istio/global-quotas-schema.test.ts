import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ManifestError } from '../../ext-authz/src/manifest.js';
import { DEFAULTS } from '../../istio/render/deployment-schema.js';
import { parseRenderInput } from '../../istio/render/load-input.js';
import { ROOT } from '../helpers/paths.js';
import { EXAMPLE_DIR, exampleInput, variantInput, variantText } from './helpers/example.js';

type Manifest = Record<string, any>;
const budgets = (m: Manifest): Array<Record<string, any>> => m.globalQuotas.budgets;

// One edit of the example's globalQuotas (or what it leans on) per error, each with the exact message an operator sees.
const CASES: Array<[string, (m: Manifest) => void, string]> = [
  ['unknown key', (m) => { m.globalQuotas.budget = []; }, 'unknown key "budget" (globalQuotas)'],
  ['no budgets', (m) => { m.globalQuotas.budgets = []; }, 'must not be empty (globalQuotas.budgets)'],
  ['missing budgets', (m) => { delete m.globalQuotas.budgets; }, 'missing required key "budgets" (globalQuotas)'],
  ['bad failure mode', (m) => { m.globalQuotas.failureMode = 'open'; }, 'expected one of "deny", "allow" (globalQuotas.failureMode)'],
  ['bad timeout', (m) => { m.globalQuotas.timeout = '250ms'; }, 'bad timeout: use seconds with an "s" suffix, more than 0 and under 100, like "0.25s" (globalQuotas.timeout)'],
  ['zero timeout', (m) => { m.globalQuotas.timeout = '0s'; }, 'bad timeout: use seconds with an "s" suffix, more than 0 and under 100, like "0.25s" (globalQuotas.timeout)'],
  ['unknown budget key', (m) => { budgets(m)[0]!.tier = ['free']; }, 'unknown key "tier" (globalQuotas.budgets[0])'],
  ['bad budget name', (m) => { budgets(m)[0]!.name = 'Free_Tenants'; }, 'bad budget name: use a DNS label (lowercase letters, digits, "-", at most 63) (globalQuotas.budgets[0].name)'],
  ['duplicate budget name', (m) => { budgets(m)[1]!.name = 'free-tenants-hourly'; }, 'duplicate budget name "free-tenants-hourly", first used at budgets[0] (globalQuotas.budgets[1].name)'],
  ['bad per', (m) => { budgets(m)[0]!.per = 'user'; }, 'expected one of "tenant", "tier", "caller", "route" (globalQuotas.budgets[0].per)'],
  ['missing limit', (m) => { delete budgets(m)[0]!.limit; }, 'missing required key "limit" (globalQuotas.budgets[0])'],
  ['a unit the service lacks', (m) => { budgets(m)[0]!.limit.unit = 'week'; }, 'expected one of "second", "minute", "hour", "day" (globalQuotas.budgets[0].limit.unit)'],
  ['zero requests', (m) => { budgets(m)[0]!.limit.requests = 0; }, 'must be at least 1 (globalQuotas.budgets[0].limit.requests)'],
  ['more requests than the service counts', (m) => { budgets(m)[0]!.limit.requests = 2 ** 32; }, 'must be at most 4294967295 (globalQuotas.budgets[0].limit.requests)'],
  ['fractional requests', (m) => { budgets(m)[0]!.limit.requests = 1.5; }, 'expected int, got number (globalQuotas.budgets[0].limit.requests)'],
  ['bad budget failure mode', (m) => { budgets(m)[0]!.failureMode = 'fail-open'; }, 'expected one of "deny", "allow" (globalQuotas.budgets[0].failureMode)'],
  ['empty filter', (m) => { budgets(m)[0]!.tiers = []; }, 'must not be empty (globalQuotas.budgets[0].tiers)'],
  ['unknown tier', (m) => { budgets(m)[0]!.tiers = ['free', 'gold']; }, 'unknown tier "gold": not in the tiers section (globalQuotas.budgets[0].tiers[1])'],
  ['repeated tier', (m) => { budgets(m)[0]!.tiers = ['free', 'free']; }, '"free" repeats tiers[0] (globalQuotas.budgets[0].tiers[1])'],
  ['repeated path', (m) => { budgets(m)[1]!.paths.push('/v1/models/sdxl:predict'); }, '"/v1/models/sdxl:predict" repeats paths[0] (globalQuotas.budgets[1].paths[2])'],
  ['per tenant without a tenant claim', (m) => { delete m.endUsers.claims.tenant; delete m.rules[0].tenants; },
    'per "tenant" needs endUsers.claims.tenant: no request would carry a verified tenant, so the budget would never apply (globalQuotas.budgets[0].per)'],
  ['per tier without a tier claim', (m) => { delete m.endUsers.claims.tier; delete m.tiers; delete m.rules[0].tiers; budgets(m)[0]!.per = 'tier'; delete budgets(m)[0]!.tiers; },
    'per "tier" needs endUsers.claims.tier: no request would carry a verified tier, so the budget would never apply (globalQuotas.budgets[0].per)'],
  ['a tenants filter without a tenant claim', (m) => { delete m.endUsers.claims.tenant; delete m.rules[0].tenants; budgets(m)[0]!.per = 'caller'; budgets(m)[0]!.tenants = ['acme']; },
    '"tenants" needs endUsers.claims.tenant (which claim holds it) (globalQuotas.budgets[0].tenants)'],
  ['bad caller pattern', (m) => { budgets(m)[1]!.callers = ['spiffe://cluster.local/ns/*/sa/x']; }, 'bad caller pattern "spiffe://cluster.local/ns/*/sa/x": * is only allowed as a trailing /* (globalQuotas.budgets[1].callers[0])'],
  ['bad SPIFFE ID', (m) => { budgets(m)[1]!.callers = ['cluster.local/ns/batch/sa/scorer']; }, 'bad SPIFFE ID "cluster.local/ns/batch/sa/scorer": scheme is missing or invalid (globalQuotas.budgets[1].callers[0])'],
  ['a caller from a trust domain the manifest does not trust', (m) => { budgets(m)[1]!.callers = ['spiffe://partner.example/ns/agents/*']; },
    'caller pattern "spiffe://partner.example/ns/agents/*": trust domain "partner.example" is not in trustDomains, so no such caller is ever allowed (globalQuotas.budgets[1].callers[0])'],
  ['bad path glob', (m) => { budgets(m)[1]!.paths = ['v1/models/sdxl:predict']; }, 'bad path glob "v1/models/sdxl:predict": must start with "/" (globalQuotas.budgets[1].paths[0])'],
  ['a glob the server never matches', (m) => { budgets(m)[1]!.paths = ['/v1/models/../admin']; }, 'bad path glob "/v1/models/../admin": dot segment can never match a normalised path (globalQuotas.budgets[1].paths[0])'],
  ['a semicolon the server refuses', (m) => { budgets(m)[1]!.paths = ['/v1/models/a;b']; },
    'bad path glob "/v1/models/a;b": ";" can never match unless requestPaths.allowSemicolons is true (globalQuotas.budgets[1].paths[0])'],
  ['a glob over Envoy\'s regex limit', (m) => { budgets(m)[1]!.paths = [`/v1/models/${'x'.repeat(80)}:predict`]; },
    `path glob "/v1/models/${'x'.repeat(80)}:predict" is too long for Envoy's regex limit (program size up to 131, at most 100): use a shorter glob, e.g. with a * (globalQuotas.budgets[1].paths[0])`],
  ['per route without paths', (m) => { delete budgets(m)[1]!.paths; }, 'per "route" needs paths: the model routes whose requests share the bucket (globalQuotas.budgets[1])'],
  ['too many rules', (m) => { budgets(m)[0]!.tenants = Array.from({ length: 33 }, (_, i) => `t${i}`); budgets(m)[0]!.paths = ['/v1/**', '/v2/**']; },
    'its filters make 66 rate-limit rules (tiers × tenants × callers × paths), more than 64; each is checked on every request (globalQuotas.budgets[0])'],
  ['a rate-limit service without budgets', (m) => { delete m.globalQuotas; m.deployment.rateLimitService = { replicas: 3 }; },
    'rateLimitService has nothing to serve: add a globalQuotas section (deployment.rateLimitService)'],
  ['a Redis without budgets', (m) => { delete m.globalQuotas; m.deployment.redis = { image: 'docker.io/library/redis:7.0.15-bookworm' }; },
    'redis has nothing to serve: add a globalQuotas section (deployment.redis)'],
  ['an unpinned rate-limit service image', (m) => { m.deployment.rateLimitService = { image: 'envoyproxy/ratelimit:latest' }; },
    'bad image: pin a tag (not latest) or a sha256 digest (deployment.rateLimitService.image)'],
  ['one rate-limit service replica', (m) => { m.deployment.rateLimitService = { replicas: 1 }; }, 'must be at least 2 (deployment.rateLimitService.replicas)'],
  ['unknown Redis key', (m) => { m.deployment.redis = { replicas: 2 }; }, 'unknown key "replicas" (deployment.redis)'],
];

describe('globalQuotas validation', () => {
  it.each(CASES)('rejects %s with an exact message', (_name, edit, message) => {
    const text = variantText(() => {}, edit);
    const [, what, where] = /^(.*) \(([^()]*)\)$/.exec(message)!;
    expect(() => parseRenderInput(text, 'infergate.yaml', EXAMPLE_DIR)).toThrow(new ManifestError('infergate.yaml', what!, where!));
  });

  it('the server accepts the section without reading it, as it does deployment', async () => {
    const { parseManifestText } = await import('../../ext-authz/src/manifest.js');
    const text = variantText(() => {});
    expect(parseManifestText(text, 'infergate.yaml')).toEqual(exampleInput().policy);
  });

  it("fills in defaults: deny, 0.25s, filters absent, and the service's images", () => {
    const q = variantInput(() => {}, (m) => { delete m.globalQuotas.failureMode; }).globalQuotas!;
    expect(q).toEqual({
      timeout: '0.25s',
      budgets: [
        { name: 'free-tenants-hourly', per: 'tenant', tiers: ['free'], tenants: null, callers: null, paths: null, limit: { requests: 1000, unit: 'hour' }, failureMode: 'allow' },
        { name: 'image-model', per: 'route', tiers: null, tenants: null, callers: null, paths: ['/v1/models/sdxl:predict', '/v2/models/sdxl/infer'], limit: { requests: 600, unit: 'minute' }, failureMode: 'deny' },
      ],
    });
    expect(variantInput(() => {}, (m) => { m.globalQuotas.failureMode = 'allow'; }).globalQuotas!.budgets.map((b) => b.failureMode)).toEqual(['allow', 'allow']);
    const d = exampleInput().deployment;
    expect(d.rateLimitService).toEqual({ image: DEFAULTS.rateLimitImage, replicas: 2, resources: DEFAULTS.rateLimitResources, logLevel: 'warn' });
    expect(d.redis).toEqual({ image: DEFAULTS.redisImage, resources: DEFAULTS.redisResources });
  });

  it('the default service image is the envoyproxy/ratelimit commit set-up installs and the tests run', () => {
    const pinned = /^RATELIMIT_VERSION=v[0-9.]+-[0-9]+\.[0-9]+-([0-9a-f]{12})$/m.exec(readFileSync(`${ROOT}scripts/versions.sh`, 'utf8'))![1]!;
    expect(DEFAULTS.rateLimitImage).toBe(`docker.io/envoyproxy/ratelimit:${pinned.slice(0, 8)}`);
  });

  it('the server never sees the budgets: they leave its ConfigMap, so a budget change is no policy change', () => {
    const input = exampleInput();
    expect(input.accessManifest).not.toMatch(/^globalQuotas:/m);
    expect(input.accessManifest).not.toContain('free-tenants-hourly');
    expect(variantInput(() => {}, (m) => { delete m.globalQuotas; }).globalQuotas).toBeNull();
  });
});
