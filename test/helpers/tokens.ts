import { renameSync, writeFileSync } from 'node:fs';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK, type JWTPayload } from 'jose';

/** A signing key of a test issuer, and its public JWK (with kid and alg) for a JWKS. */
export interface SigningKey {
  readonly alg: 'RS256' | 'ES256' | 'EdDSA';
  readonly kid: string;
  readonly privateKey: CryptoKey;
  readonly jwk: JWK;
}

export async function signingKey(alg: SigningKey['alg'], kid: string): Promise<SigningKey> {
  const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true, ...(alg === 'EdDSA' ? { crv: 'Ed25519' } : {}) });
  return { alg, kid, privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' } };
}

export function jwks(...keys: SigningKey[]): { keys: JWK[] } {
  return { keys: keys.map((k) => k.jwk) };
}

/** A signed JWT; `exp`/`nbf`/`iat` are epoch seconds, defaulting to a token valid for ten minutes. */
export async function token(key: SigningKey, claims: JWTPayload & { iss: string; aud: string | string[] }, header: Record<string, unknown> = {}): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ iat: now, exp: now + 600, ...claims })
    .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'JWT', ...header })
    .sign(key.privateKey);
}

/** Replaces a JWKS file in one step (write, then rename), as a key rotation should, so the server never reads half of it. */
export function writeJwks(path: string, ...keys: SigningKey[]): void {
  writeFileSync(`${path}.tmp`, JSON.stringify(jwks(...keys)));
  renameSync(`${path}.tmp`, path);
}

/** The header a delegate sends an end user's token in (the default tokenHeader). */
export function bearer(t: string): { authorization: string } {
  return { authorization: `Bearer ${t}` };
}
