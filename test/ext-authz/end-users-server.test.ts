import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CheckResponse } from '../../ext-authz/src/check-response.js';
import { AuthzServer } from '../../ext-authz/src/server.js';
import { authzClient, httpCheck, type AuthzClient } from '../helpers/authz-client.js';
import { requireBundle } from '../helpers/paths.js';
import { jwks, signingKey, token, type SigningKey } from '../helpers/tokens.js';

const ISS = 'https://auth.example.com';
const AUD = 'model-api';
const GATEWAY = 'spiffe://cluster.local/ns/gateway/sa/api-gateway';
const BATCH = 'spiffe://cluster.local/ns/batch/sa/scorer';
const HOST = 'model-serving.ml.svc.cluster.local';
const SMALL = '/v1/models/text-small:predict';
const IMAGE = '/v2/models/image-gen/infer';

const MANIFEST = `trustDomains: [cluster.local]
endUsers:
  delegates: [${GATEWAY}]
  clockSkewSeconds: 1
  claims: { subject: sub, tenant: org, tier: plan, scopes: scope }
  issuers:
    - issuer: ${ISS}
      audiences: [${AUD}]
      jwks: { file: jwks.json }
tiers:
  free: { paths: ["${SMALL}"] }
  premium: { paths: ["/v1/models/*:predict", "/v2/models/*/infer"] }
rules:
  - name: tenants-call-models
    callers: [${GATEWAY}]
    methods: [POST]
    tenants: [acme, globex]
    scopes: [predict]
  - name: batch-scores
    callers: ["spiffe://cluster.local/ns/batch/*"]
    methods: [POST]
    paths: ["/v1/models/*:predict"]
`;

const headers = (list: Array<{ header: { key: string; value: string } }> | undefined) => Object.fromEntries((list ?? []).map((h) => [h.header.key, h.header.value]));
const reason = (r: CheckResponse) => (r.status?.code ?? 0) === 0 ? 'allowed' : headers(r.denied_response?.headers)['x-infergate-reason'];

describe('end users through the real server: verified tokens, delegation, tenants and tiers', () => {
  let dir: string;
  let server: AuthzServer;
  let client: AuthzClient;
  let key: SigningKey;
  let next: SigningKey;

  const tokenFor = (org: string, plan: string, extra: Record<string, unknown> = {}, k = key) =>
    token(k, { iss: ISS, aud: AUD, sub: `user-of-${org}`, org, plan, scope: 'predict', ...extra });
  const check = (caller: string, path: string, h: Record<string, string> = {}) => client.check(httpCheck(caller, 'POST', path, HOST, h));
  const bearer = (t: string) => ({ authorization: `Bearer ${t}` });

  beforeAll(async () => {
    [key, next] = await Promise.all([signingKey('ES256', 'k1'), signingKey('RS256', 'k2')]);
    dir = mkdtempSync(join(tmpdir(), 'infergate-end-users-'));
    writeFileSync(join(dir, 'jwks.json'), JSON.stringify(jwks(key)));
    writeFileSync(join(dir, 'manifest.yaml'), MANIFEST);
    server = await AuthzServer.start({
      bundlePath: requireBundle(), manifestPath: join(dir, 'manifest.yaml'), listen: '127.0.0.1:0', socket: null, metricsListen: '127.0.0.1:0',
      dryRun: false, cacheSize: 100, cacheTtlSeconds: 60, trustXfcc: false, inputHeaders: [], decisionLog: 'off', logLevel: 'silent', watch: true, pollMs: 100,
    });
    client = authzClient(`127.0.0.1:${server.port}`);
  });
  afterAll(async () => {
    client?.close();
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("lets the gateway call for a premium tenant, and tells the upstream and the quota filter who it is for", async () => {
    const r = await check(GATEWAY, IMAGE, { ...bearer(await tokenFor('acme', 'premium')), 'x-infergate-tenant': 'forged' });
    expect(reason(r)).toBe('allowed');
    expect(headers(r.ok_response!.headers)).toMatchObject({
      'x-infergate-tenant': 'acme', 'x-infergate-tier': 'premium', 'x-infergate-subject': 'user-of-acme', 'x-infergate-quota': 'tenant/premium/acme', 'x-infergate-rule': 'tenants-call-models',
    });
  });

  it("holds a free tenant to its tier's models", async () => {
    const t = await tokenFor('globex', 'free');
    expect(reason(await check(GATEWAY, SMALL, bearer(t)))).toBe('allowed');
    const denied = await check(GATEWAY, IMAGE, bearer(t));
    expect(reason(denied)).toBe('tier_forbids');
    expect(denied.denied_response!.status.code).toBe(403);
  });

  it.each([
    ['no token at all', async () => ({})],
    ['only a claims header, as if a front proxy had verified a token', async () => ({ 'x-jwt-payload': Buffer.from(JSON.stringify({ iss: ISS, org: 'acme', plan: 'premium', scope: 'predict' })).toString('base64url'), 'x-infergate-tenant': 'acme' })],
  ])('gives the gateway with %s no_token (401)', async (_what, extra) => {
    const r = await check(GATEWAY, IMAGE, await extra());
    expect(reason(r)).toBe('no_token');
    expect(r.status.code).toBe(16);
    expect(r.denied_response!.status.code).toBe(401);
  });

  it('refuses a forged signature and an expired token, each with its own reason', async () => {
    const [h, , s] = (await tokenFor('acme', 'free')).split('.');
    const forged = `${h}.${Buffer.from(JSON.stringify({ iss: ISS, aud: AUD, org: 'acme', plan: 'premium', scope: 'predict', exp: Math.floor(Date.now() / 1000) + 600 })).toString('base64url')}.${s}`;
    expect(reason(await check(GATEWAY, IMAGE, bearer(forged)))).toBe('invalid_token');
    const expired = await tokenFor('acme', 'premium', { exp: Math.floor(Date.now() / 1000) - 60 });
    expect(reason(await check(GATEWAY, IMAGE, bearer(expired)))).toBe('token_expired');
  });

  it('refuses a valid token presented by a workload that is not a delegate', async () => {
    const r = await check(BATCH, SMALL, bearer(await tokenFor('acme', 'premium')));
    expect(reason(r)).toBe('not_delegated');
    expect(r.denied_response!.status.code).toBe(403);
    // Without a token the same workload is judged as itself.
    expect(reason(await check(BATCH, SMALL))).toBe('allowed');
  });

  it('never answers from the cache past the exp of the token an answer rests on', async () => {
    const soon = await tokenFor('acme', 'premium', { exp: Math.floor(Date.now() / 1000) + 1 });
    expect(reason(await check(GATEWAY, '/v1/models/soon:predict', bearer(soon)))).toBe('allowed');
    await new Promise((r) => setTimeout(r, 2_600)); // past exp + the 1 s skew
    expect(reason(await check(GATEWAY, '/v1/models/soon:predict', bearer(soon)))).toBe('token_expired');
  }, 15_000);

  it('takes a key rotation in the JWKS file without a restart: old-key tokens stop verifying, new-key ones start', async () => {
    const old = await tokenFor('acme', 'premium');
    const fresh = await tokenFor('acme', 'premium', {}, next);
    expect(reason(await check(GATEWAY, IMAGE, bearer(old)))).toBe('allowed');
    expect(reason(await check(GATEWAY, IMAGE, bearer(fresh)))).toBe('invalid_token');
    const revision = server.revision;
    writeFileSync(join(dir, 'jwks.json.tmp'), JSON.stringify(jwks(next)));
    renameSync(join(dir, 'jwks.json.tmp'), join(dir, 'jwks.json'));
    await expect.poll(() => server.revision, { timeout: 3000 }).not.toBe(revision);
    expect(reason(await check(GATEWAY, IMAGE, bearer(fresh)))).toBe('allowed');
    expect(reason(await check(GATEWAY, IMAGE, bearer(old)))).toBe('invalid_token');
  });
});
