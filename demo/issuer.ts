import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { calculateJwkThumbprint, compactVerify, decodeJwt, exportJWK, generateKeyPair, importJWK, SignJWT, type CryptoKey, type JWK } from 'jose';

/**
 * The demo's stand-in for an identity provider: one ES256 signing key, the
 * JWKS infergate-authz verifies tokens with, and the end-user tokens the
 * scene presents through the API gateway. demo/manifest.yaml names the same
 * issuer and audience, and `jwks: { file: jwks.json }` beside it: the demo
 * runs the server on its copy of the manifest in <state>/authz/, the
 * directory that holds what the server reads and nothing else (never the
 * signing key).
 *
 *   <state>/issuer/signing-key.jwk   the private key (0600)
 *   <state>/authz/jwks.json          its public half
 *   <state>/tokens/<user>.jwt        one token per end user (0600)
 *
 * Everything is made on first run and reused after: the key when it is
 * missing, the JWKS when it is not the key's, a token when it is missing,
 * not signed by the key, or (a valid one) within an hour of its expiry.
 */

export const DEMO_ISSUER = 'https://auth.demo.infergate.test';
export const DEMO_AUDIENCE = 'model-api';

/** Who each token is for; the claim names are demo/manifest.yaml's endUsers.claims. */
export const END_USERS = {
  premium: { sub: 'alice@acme', tenant: 'acme', tier: 'premium' },
  free: { sub: 'bob@globex', tenant: 'globex', tier: 'free' },
  /** A premium tenant whose contract is also a global quota (demo/manifest.yaml's globalQuotas). */
  metered: { sub: 'dave@initech', tenant: 'initech', tier: 'premium' },
  /** Expired an hour before it was made, far past the server's clock skew. */
  expired: { sub: 'carol@acme', tenant: 'acme', tier: 'premium' },
} as const;
export type EndUserName = keyof typeof END_USERS;

export interface DemoTokens {
  /** The issuer's public keys, in the server's directory, where the demo's manifest copy names them. */
  readonly jwksFile: string;
  /** One compact JWT per end user, for `authorization: Bearer …`. */
  readonly tokens: Readonly<Record<EndUserName, string>>;
  /** Where each token is stored (for curl: `-H "authorization: Bearer $(cat <file>)"`). */
  readonly files: Readonly<Record<EndUserName, string>>;
}

const ALG = 'ES256';
const VALID_SECONDS = 24 * 3600;
const RENEW_SECONDS = 3600;

interface Key {
  readonly kid: string;
  readonly privateKey: CryptoKey;
  readonly publicKey: CryptoKey;
  readonly publicJwk: JWK;
}

function readOrNull(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return null;
  }
}

/** Replaces a file in one step, so the server never reads half a JWKS. */
function writeAtomically(path: string, text: string, mode: number): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, text, { mode });
  renameSync(tmp, path);
}

function publicPart(jwk: JWK): JWK {
  const { kty, crv, x, y } = jwk;
  return { kty, crv, x, y };
}

async function loadKey(file: string): Promise<Key | null> {
  const text = readOrNull(file);
  if (text === null) return null;
  try {
    const jwk = JSON.parse(text) as JWK;
    if (jwk.kty !== 'EC' || jwk.crv !== 'P-256' || typeof jwk.d !== 'string' || typeof jwk.kid !== 'string') return null;
    const pub = publicPart(jwk);
    return {
      kid: jwk.kid,
      privateKey: (await importJWK(jwk, ALG)) as CryptoKey,
      publicKey: (await importJWK(pub, ALG)) as CryptoKey,
      publicJwk: { ...pub, kid: jwk.kid, alg: ALG, use: 'sig' },
    };
  } catch {
    return null;
  }
}

async function makeKey(file: string): Promise<Key> {
  const { privateKey } = await generateKeyPair(ALG, { extractable: true });
  const jwk = await exportJWK(privateKey);
  const kid = await calculateJwkThumbprint(publicPart(jwk));
  writeAtomically(file, JSON.stringify({ ...jwk, kid, alg: ALG }, null, 2) + '\n', 0o600);
  return (await loadKey(file))!;
}

async function sign(key: Key, who: EndUserName, nowS: number): Promise<string> {
  const expired = who === 'expired';
  const iat = expired ? nowS - 2 * 3600 : nowS;
  return new SignJWT({ ...END_USERS[who] })
    .setProtectedHeader({ alg: ALG, kid: key.kid, typ: 'JWT' })
    .setIssuer(DEMO_ISSUER)
    .setAudience(DEMO_AUDIENCE)
    .setIssuedAt(iat)
    .setExpirationTime(expired ? nowS - 3600 : nowS + VALID_SECONDS)
    .sign(key.privateKey);
}

/** Whether a stored token is still the one to present: signed by the key, for the right user, and (unless meant to be expired) good for a while. */
async function usable(key: Key, who: EndUserName, token: string | null, nowS: number): Promise<boolean> {
  if (token === null) return false;
  try {
    await compactVerify(token, key.publicKey);
    const claims = decodeJwt(token);
    const want = END_USERS[who];
    if (claims.iss !== DEMO_ISSUER || claims.aud !== DEMO_AUDIENCE || claims.sub !== want.sub || claims.tenant !== want.tenant || claims.tier !== want.tier) return false;
    if (typeof claims.exp !== 'number') return false;
    return who === 'expired' ? claims.exp <= nowS - 3600 : claims.exp - nowS > RENEW_SECONDS;
  } catch {
    return false;
  }
}

/** What the demo's server reads: its manifest copy and the JWKS beside it. */
export function serverDir(state: string): string {
  return join(state, 'authz');
}

/** The demo's JWKS and tokens under `state` (the demo's .demo/), made or renewed as needed. */
export async function demoTokens(state: string, now = Date.now()): Promise<DemoTokens> {
  const keyFile = join(state, 'issuer', 'signing-key.jwk');
  const key = (await loadKey(keyFile)) ?? (await makeKey(keyFile));
  const jwksFile = join(serverDir(state), 'jwks.json');
  const jwks = JSON.stringify({ keys: [key.publicJwk] }, null, 2) + '\n';
  if (readOrNull(jwksFile) !== jwks) writeAtomically(jwksFile, jwks, 0o644);
  const nowS = Math.floor(now / 1000);
  const tokens = {} as Record<EndUserName, string>;
  const files = {} as Record<EndUserName, string>;
  for (const who of Object.keys(END_USERS) as EndUserName[]) {
    const file = join(state, 'tokens', `${who}.jwt`);
    let token = readOrNull(file)?.trim() ?? null;
    if (!(await usable(key, who, token, nowS))) {
      token = await sign(key, who, nowS);
      writeAtomically(file, token + '\n', 0o600);
    }
    tokens[who] = token!;
    files[who] = file;
  }
  return { jwksFile, tokens, files };
}
