import { decodeJwt, errors, jwtVerify } from 'jose';
import { LRUCache } from 'lru-cache';
import { AuthzError, REASONS, errorMessage } from '../errors.js';
import { verifiedToken, type VerifiedToken } from './end-user.js';
import type { KeySet } from './key-sets.js';
import type { EndUsersConfig } from './manifest.js';

/** Verified tokens kept; a gateway re-sends each user's token many times. */
const CACHE_ENTRIES = 10_000;
/** Even a long-lived token is verified again this often (a remote JWKS may have dropped its key). */
const MAX_CACHE_MS = 60_000;

function invalid(why: string): AuthzError {
  return new AuthzError(REASONS.invalid_token, why);
}

/** jose's errors → a reason and a detail an operator can act on. */
function reasonFor(err: unknown): AuthzError {
  if (err instanceof AuthzError) return err;
  if (err instanceof errors.JWTExpired) return new AuthzError(REASONS.token_expired, `token expired (${err.reason})`);
  if (err instanceof errors.JWTClaimValidationFailed) return invalid(`claim "${err.claim}" ${err.reason === 'check_failed' ? 'does not match' : err.reason}: ${err.message}`);
  if (err instanceof errors.JWSSignatureVerificationFailed) return invalid('signature does not verify');
  if (err instanceof errors.JWKSNoMatchingKey) return invalid("no key in the issuer's JWKS matches the token's kid and alg");
  if (err instanceof errors.JWKSMultipleMatchingKeys) return invalid("several keys in the issuer's JWKS match; the token needs a kid");
  if (err instanceof errors.JOSEAlgNotAllowed) return invalid(`algorithm not allowed for this issuer: ${err.message}`);
  if (err instanceof errors.JOSENotSupported) return invalid(`unsupported token: ${err.message}`);
  if (err instanceof errors.JWSInvalid || err instanceof errors.JWTInvalid) return invalid(`malformed token: ${err.message}`);
  return invalid(`token not verified: ${errorMessage(err)}`);
}

/**
 * Verifies end-user tokens against the manifest's issuers: signature with
 * the issuer's keys and allowed algorithms, `iss`, `aud`, `exp` (required)
 * and `nbf`, within the clock skew. Verified tokens are cached by their text
 * until the earlier of their exp and a minute; the cache belongs to one
 * policy revision (a JWKS file edit is a new revision, with a fresh cache)
 * and is cleared when a remote JWKS changes.
 */
export class TokenVerifier {
  private readonly cache: LRUCache<string, VerifiedToken>;
  private readonly byIssuer: Map<string, { cfg: EndUsersConfig['issuers'][number]; keys: KeySet }>;

  constructor(
    private readonly config: EndUsersConfig,
    keySets: ReadonlyMap<string, KeySet>,
    private readonly now: () => number = Date.now,
  ) {
    this.cache = new LRUCache({ max: CACHE_ENTRIES, ttlAutopurge: false, perf: { now }, ttlResolution: 0 });
    this.byIssuer = new Map(config.issuers.map((cfg) => [cfg.issuer, { cfg, keys: keySets.get(cfg.issuer)! }]));
  }

  /** A token verified before and still valid, without any crypto; undefined otherwise. */
  cached(token: string): VerifiedToken | undefined {
    const hit = this.cache.get(token);
    if (hit !== undefined && this.now() < hit.expiresAtMs + this.config.clock_skew_seconds * 1000) return hit;
    return undefined;
  }

  async verify(token: string): Promise<VerifiedToken> {
    let iss: unknown;
    try {
      iss = decodeJwt(token).iss;
    } catch (err) {
      throw reasonFor(err);
    }
    const issuer = typeof iss === 'string' ? this.byIssuer.get(iss) : undefined;
    if (issuer === undefined) throw invalid(typeof iss === 'string' ? `untrusted issuer "${iss.slice(0, 200)}"` : 'token has no iss');
    let payload;
    try {
      ({ payload } = await jwtVerify(token, issuer.keys.getKey, {
        issuer: issuer.cfg.issuer,
        audience: issuer.cfg.audiences,
        algorithms: issuer.cfg.algorithms,
        clockTolerance: this.config.clock_skew_seconds,
        requiredClaims: ['exp'],
        currentDate: new Date(this.now()),
      }));
    } catch (err) {
      if (err instanceof errors.JWKSNoMatchingKey) issuer.keys.unknownKey();
      throw reasonFor(err);
    }
    const v = verifiedToken(payload, this.config.claims);
    const ttl = Math.min(v.expiresAtMs + this.config.clock_skew_seconds * 1000 - this.now(), MAX_CACHE_MS);
    if (ttl > 0) this.cache.set(token, v, { ttl });
    return v;
  }

  /** Forget every verified token (the keys changed). */
  clear(): void {
    this.cache.clear();
  }
}
