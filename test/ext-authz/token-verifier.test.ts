import { SignJWT } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import { AuthzError } from '../../ext-authz/src/errors.js';
import { fileKeySet } from '../../ext-authz/src/end-users/key-sets.js';
import type { EndUsersConfig } from '../../ext-authz/src/end-users/manifest.js';
import { TokenVerifier } from '../../ext-authz/src/end-users/token-verifier.js';
import { jwks, signingKey, token, type SigningKey } from '../helpers/tokens.js';

const ISS = 'https://auth.example.com';
const AUD = 'model-api';

function config(over: Partial<EndUsersConfig['issuers'][number]> = {}): EndUsersConfig {
  return {
    token_header: 'authorization',
    delegates: { exact: {}, prefixes: [] },
    clock_skew_seconds: 30,
    claims: { subject: 'sub', tenant: 'org', tier: 'plan', scopes: 'scope' },
    issuers: [{ issuer: ISS, audiences: [AUD], algorithms: ['RS256', 'ES256', 'EdDSA'], jwks: { file: 'jwks.json' }, ...over }],
  };
}

async function refusal(p: Promise<unknown>): Promise<{ code: string; message: string }> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(AuthzError);
    return { code: (err as AuthzError).code, message: (err as AuthzError).message };
  }
  throw new Error('the token was accepted');
}

describe('end-user token verification', () => {
  let rs: SigningKey;
  let es: SigningKey;
  let ed: SigningKey;
  let stranger: SigningKey;
  let verifier: TokenVerifier;
  const now = Math.floor(Date.now() / 1000);

  beforeAll(async () => {
    [rs, es, ed, stranger] = await Promise.all([signingKey('RS256', 'rs-1'), signingKey('ES256', 'es-1'), signingKey('EdDSA', 'ed-1'), signingKey('ES256', 'es-1')]);
    verifier = new TokenVerifier(config(), new Map([[ISS, fileKeySet(jwks(rs, es, ed))]]));
  });

  it.each(['RS256', 'ES256', 'EdDSA'] as const)('accepts a %s token and projects the claims the manifest names', async (alg) => {
    const key = { RS256: rs, ES256: es, EdDSA: ed }[alg];
    const t = await token(key, { iss: ISS, aud: AUD, sub: 'user-1', org: 'acme', plan: 'premium', scope: 'predict read predict', email: 'x@y' });
    const v = await verifier.verify(t);
    expect(v.endUser).toEqual({ issuer: ISS, tenant: 'acme', tier: 'premium', scopes: ['predict', 'read'] });
    expect(v.subject).toBe('user-1');
    expect(v.expiresAtMs).toBe((now + 600) * 1000);
  });

  it('takes scopes as a list too, and leaves unmapped claims out', async () => {
    const t = await token(es, { iss: ISS, aud: [AUD, 'other'], scope: ['b', 'a'] });
    expect((await verifier.verify(t)).endUser).toEqual({ issuer: ISS, tenant: null, tier: null, scopes: ['a', 'b'] });
  });

  it.each([
    ['an expired token', { exp: now - 120 }, 'token_expired', /^token expired/],
    ['a token not valid yet', { nbf: now + 600 }, 'invalid_token', /^claim "nbf"/],
    ['another audience', { aud: 'billing' }, 'invalid_token', /^claim "aud" does not match/],
    ['no exp', { exp: undefined }, 'invalid_token', /^claim "exp"/],
    ['a tenant claim that is not a string', { org: 42 }, 'invalid_token', 'claim "org" is not a short printable string'],
    ['a scope list of non-strings', { scope: [1, 2] }, 'invalid_token', 'claim "scope" is not a space-separated string or a list of scopes'],
  ] as const)('refuses %s', async (_what, claims, code, message) => {
    const t = await token(es, { iss: ISS, aud: AUD, ...claims } as never);
    const r = await refusal(verifier.verify(t));
    expect(r.code).toBe(code);
    if (typeof message === 'string') expect(r.message).toBe(message);
    else expect(r.message).toMatch(message);
  });

  it('accepts a token expired less than the clock skew ago', async () => {
    const t = await token(es, { iss: ISS, aud: AUD, exp: now - 10 });
    expect((await verifier.verify(t)).expiresAtMs).toBe((now - 10) * 1000);
  });

  it("refuses a token signed by a key the issuer's JWKS does not hold", async () => {
    const t = await token(stranger, { iss: ISS, aud: AUD });
    expect(await refusal(verifier.verify(t))).toEqual({ code: 'invalid_token', message: 'signature does not verify' });
    const unknownKid = await token(stranger, { iss: ISS, aud: AUD }, { kid: 'nope' });
    expect(await refusal(verifier.verify(unknownKid))).toEqual({ code: 'invalid_token', message: "no key in the issuer's JWKS matches the token's kid and alg" });
  });

  it('refuses an untrusted issuer, before looking for keys', async () => {
    const t = await token(es, { iss: 'https://evil.example', aud: AUD });
    expect(await refusal(verifier.verify(t))).toEqual({ code: 'invalid_token', message: 'untrusted issuer "https://evil.example"' });
  });

  it('refuses an algorithm the issuer does not allow, including HS256 and none', async () => {
    const only = new TokenVerifier(config({ algorithms: ['ES256'] }), new Map([[ISS, fileKeySet(jwks(rs, es))]]));
    expect((await refusal(only.verify(await token(rs, { iss: ISS, aud: AUD })))).message).toMatch(/^algorithm not allowed/);
    const hs = await new SignJWT({ iss: ISS, aud: AUD, exp: now + 600 }).setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode('a shared secret of 32 bytes !!!!'));
    expect((await refusal(verifier.verify(hs))).code).toBe('invalid_token');
    const none = `${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from(JSON.stringify({ iss: ISS, aud: AUD, exp: now + 600 })).toString('base64url')}.`;
    expect((await refusal(verifier.verify(none))).code).toBe('invalid_token');
  });

  it('refuses a tampered payload', async () => {
    const [h, , s] = (await token(es, { iss: ISS, aud: AUD, org: 'acme' })).split('.');
    const forged = `${h}.${Buffer.from(JSON.stringify({ iss: ISS, aud: AUD, org: 'globex', exp: now + 600 })).toString('base64url')}.${s}`;
    expect(await refusal(verifier.verify(forged))).toEqual({ code: 'invalid_token', message: 'signature does not verify' });
  });

  it('answers a token verified before from its cache, but never past its exp', async () => {
    let clock = Date.now();
    const v = new TokenVerifier(config(), new Map([[ISS, fileKeySet(jwks(es))]]), () => clock);
    const t = await token(es, { iss: ISS, aud: AUD, exp: Math.floor(clock / 1000) + 20 });
    expect(v.cached(t)).toBeUndefined();
    await v.verify(t);
    expect(v.cached(t)?.endUser.issuer).toBe(ISS);
    clock += 49_000; // exp + skew is 20 s + 30 s away
    expect(v.cached(t)).toBeDefined();
    clock += 2_000;
    expect(v.cached(t)).toBeUndefined();
    expect((await refusal(v.verify(t))).code).toBe('token_expired');
  });
});
