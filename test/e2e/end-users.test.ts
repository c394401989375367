import { join } from 'node:path';
import { Agent } from 'node:https';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { wasmHttpFilter } from '../../envoy/bootstrap.js';
import { builtFilter } from '../filters/built.js';
import { startE2eStack, type E2eStack } from '../helpers/e2e-stack.js';
import { mtlsRequest, type Reply } from '../helpers/mtls-client.js';
import { bearer, jwks, signingKey, token, writeJwks, type SigningKey } from '../helpers/tokens.js';

/**
 * Tenants and tiers through the real Envoy: mTLS with SPIFFE client
 * certificates, ext_authz to the built server verifying real signed tokens
 * against a JWKS file, the guard filter keying its rate limit on the quota
 * the server forwards, and an upstream that records what reached it.
 */

const ISS = 'https://auth.e2e.example';
const AUD = 'model-api';
const IDS = {
  gateway: 'spiffe://cluster.local/ns/gateway/sa/api-gateway',
  // A second delegate (a canary of the gateway): a tenant's budget must not depend on which one calls.
  canary: 'spiffe://cluster.local/ns/gateway/sa/api-gateway-canary',
  frontend: 'spiffe://cluster.local/ns/web/sa/frontend',
  batch: 'spiffe://cluster.local/ns/batch/sa/scorer',
};
type Caller = keyof typeof IDS;
const HOST = 'model-serving.ml.svc.cluster.local';
const SMALL = '/v1/models/text-small:predict';
const PREMIUM_MODEL = '/v1/models/sentiment:predict';
const V2 = '/v2/models/image-gen/infer';
// No rule has this route: ext_authz denies it, so it opens a connection without spending a token.
const WARM_UP = '/v1/models/warm-up:nothing';
const FREE = { perSecond: 1, burst: 3 };

const MANIFEST = `trustDomains: [cluster.local]
endUsers:
  delegates: ["spiffe://cluster.local/ns/gateway/*"]
  claims: { subject: sub, tenant: tenant, tier: tier }
  issuers:
    - issuer: ${ISS}
      audiences: [${AUD}]
      jwks: { file: jwks.json }
tiers:
  free: { paths: ["${SMALL}"], rateLimit: { perSecond: ${FREE.perSecond}, burst: ${FREE.burst} } }
  premium: { paths: ["/v1/models/*:predict", "/v2/models/*/infer"], rateLimit: { perSecond: 50, burst: 100 } }
rules:
  - name: tenants-call-models
    callers: ["spiffe://cluster.local/ns/gateway/*"]
    methods: [POST]
    paths: ["/v1/models/*:predict", "/v2/models/*/infer"]
    tiers: [free, premium]
  - name: batch-scoring
    callers: [${IDS.batch}]
    methods: [POST]
    paths: ["/v1/models/*:predict"]
`;

// What `infergate render` makes of the tiers and a workload budget (istio/render/tier-quotas.ts).
const GUARD = {
  rateLimit: {
    identity: 'header:x-infergate-quota',
    default: { perSecond: 20, burst: 40 },
    callers: [
      { match: `workload/${IDS.batch}`, perSecond: 1, burst: 5 },
      { match: 'tenant/free/*', ...FREE },
      { match: 'tenant/premium/*', perSecond: 50, burst: 100 },
    ],
    unauthenticated: 'deny',
    maxCallers: 1000,
  },
};

const HEADERS_WE_SET = ['x-infergate-tenant', 'x-infergate-tier', 'x-infergate-subject', 'x-infergate-quota'] as const;
const FORGED = {
  'x-infergate-tenant': 'evil-corp',
  'x-infergate-tier': 'enterprise',
  'x-infergate-subject': 'root',
  'x-infergate-quota': 'workload/spiffe://cluster.local/ns/batch/sa/scorer',
};

describe('end users through the real Envoy: verified tokens, tiers, per-tenant budgets in the guard filter, key rotation', () => {
  let stack: E2eStack;
  let key: SigningKey;

  const tokenFor = (tenant: string, tier: string, claims: Record<string, unknown> = {}, k = key) =>
    token(k, { iss: ISS, aud: AUD, sub: `user@${tenant}`, tenant, tier, ...claims });
  const post = (who: Caller, path: string, headers: Record<string, string> = {}, agent?: Agent): Promise<Reply> =>
    mtlsRequest(stack.port, stack.pki.caCert, stack.pki.client(who), {
      method: 'POST', path, host: HOST, body: '{"instances":[[1]]}', headers: { 'content-type': 'application/json', ...headers }, ...(agent ? { agent } : {}),
    });
  const reasonOf = (r: Reply) => (r.status === 200 ? 'allowed' : (r.headers['x-infergate-reason'] ?? (JSON.parse(r.body) as { code: string }).code));
  /** One kept-alive connection as `who`, opened with a call ext_authz denies, so a burst on it takes milliseconds and nothing before it spends a token. */
  const connection = async (who: Caller): Promise<Agent> => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    expect((await post(who, WARM_UP, {}, agent)).status).toBe(403);
    return agent;
  };

  beforeAll(async () => {
    key = await signingKey('ES256', 'k1');
    stack = await startE2eStack({
      name: 'end-users', manifest: MANIFEST, files: { 'jwks.json': JSON.stringify(jwks(key)) }, clients: IDS,
      httpFilters: [wasmHttpFilter('infergate-guard', builtFilter('guard'), GUARD)],
    });
  });

  afterAll(async () => {
    await stack?.stop();
  });

  it('lets the gateway call for a premium tenant; the model server sees tenant, tier and subject from the verified token, never the client\'s copies', async () => {
    const before = stack.upstream.requests.length;
    const r = await post('gateway', V2, { ...bearer(await tokenFor('acme', 'premium', { sub: 'alice@acme' })), ...FORGED });
    expect(r.status).toBe(200);
    const seen = stack.upstream.requests.slice(before);
    expect(seen).toHaveLength(1);
    expect(seen[0]!.headers).toMatchObject({
      'x-infergate-caller': IDS.gateway,
      'x-infergate-rule': 'tenants-call-models',
      'x-infergate-tenant': 'acme',
      'x-infergate-tier': 'premium',
      'x-infergate-subject': 'alice@acme',
      'x-infergate-quota': 'tenant/premium/acme',
    });
  });

  it('strips every forged end-user header from a workload\'s own call, which has no end user', async () => {
    const before = stack.upstream.requests.length;
    const r = await post('batch', SMALL, FORGED);
    expect(r.status).toBe(200);
    const seen = stack.upstream.requests.slice(before);
    expect(seen).toHaveLength(1);
    expect(seen[0]!.headers['x-infergate-quota']).toBe(`workload/${IDS.batch}`);
    for (const h of HEADERS_WE_SET.filter((x) => x !== 'x-infergate-quota')) expect(seen[0]!.headers[h], h).toBeUndefined();
  });

  it.each([
    ['a free tenant calling a model outside its tier', 'gateway', PREMIUM_MODEL, () => tokenFor('globex', 'free'), {}, 403, 'tier_forbids'],
    ['an expired token', 'gateway', PREMIUM_MODEL, () => tokenFor('acme', 'premium', { exp: Math.floor(Date.now() / 1000) - 3600 }), {}, 401, 'token_expired'],
    ['a valid token from a workload that is not a delegate', 'frontend', PREMIUM_MODEL, () => tokenFor('acme', 'premium'), {}, 403, 'not_delegated'],
    ['forged claims headers without a token', 'gateway', PREMIUM_MODEL, null, {
      'x-infergate-tenant': 'acme', 'x-infergate-tier': 'premium',
      'x-jwt-payload': Buffer.from(JSON.stringify({ iss: ISS, aud: AUD, tenant: 'acme', tier: 'premium' })).toString('base64url'),
    }, 401, 'no_token'],
  ] as const)('refuses %s with its reason, and the model never sees it', async (_what, who, path, make, extra, status, reason) => {
    const before = stack.upstream.requests.length;
    const r = await post(who, path, { ...(make ? bearer(await make()) : {}), ...extra });
    expect([r.status, reasonOf(r)]).toEqual([status, reason]);
    expect(JSON.parse(r.body)).toMatchObject({ code: reason });
    expect(stack.upstream.requests.length).toBe(before);
  });

  it('gives each tenant its own budget: one free tenant\'s burst is exhausted, another free tenant and a premium one are still served; the exhausted budget follows the tenant to another gateway and past a forged quota header', async () => {
    const [initech, umbrella, acme] = await Promise.all([tokenFor('initech', 'free'), tokenFor('umbrella', 'free'), tokenFor('acme', 'premium')]);
    const [gateway, canary] = await Promise.all([connection('gateway'), connection('canary')]);
    try {
      const got = (r: Reply) => `${r.status} ${reasonOf(r)}`;
      const burst: string[] = [];
      for (let i = 0; i < FREE.burst + 2; i++) burst.push(got(await post('gateway', SMALL, bearer(initech), gateway)));
      // All of this within well under the second a free token takes to refill.
      const after = {
        otherFreeTenant: got(await post('gateway', SMALL, bearer(umbrella), gateway)),
        premiumTenant: got(await post('gateway', SMALL, bearer(acme), gateway)),
        sameTenantOtherGateway: got(await post('canary', SMALL, bearer(initech), canary)),
        sameTenantForgedQuota: got(await post('gateway', SMALL, { ...bearer(initech), 'x-infergate-quota': 'tenant/free/umbrella' }, gateway)),
      };
      expect(burst).toEqual([...Array<string>(FREE.burst).fill('200 allowed'), '429 rate_limited', '429 rate_limited']);
      expect(after).toEqual({ otherFreeTenant: '200 allowed', premiumTenant: '200 allowed', sameTenantOtherGateway: '429 rate_limited', sameTenantForgedQuota: '429 rate_limited' });
    } finally {
      gateway.destroy();
      canary.destroy();
    }
  });

  // Last: it replaces the issuer's key for good.
  it('takes a key rotation in the JWKS file while running: new-key tokens are allowed within a second, old-key ones refused at once, though verified and allowed just before', async () => {
    const next = await signingKey('ES256', 'k2');
    const [old, fresh] = await Promise.all([tokenFor('rotating', 'premium'), tokenFor('rotating', 'premium', {}, next)]);
    expect(reasonOf(await post('gateway', PREMIUM_MODEL, bearer(old)))).toBe('allowed');
    expect(reasonOf(await post('gateway', PREMIUM_MODEL, bearer(fresh)))).toBe('invalid_token');
    // The new key added and the old one removed, in one replacement of the file.
    const rotated = Date.now();
    writeJwks(join(stack.dir, 'jwks.json'), next);
    await expect.poll(async () => reasonOf(await post('gateway', PREMIUM_MODEL, bearer(fresh))), { timeout: 1000, interval: 50 }).toBe('allowed');
    const tookMs = Date.now() - rotated;
    const r = await post('gateway', PREMIUM_MODEL, bearer(old));
    expect([r.status, reasonOf(r)]).toEqual([401, 'invalid_token']);
    expect(tookMs).toBeLessThan(1000);
  });
});
