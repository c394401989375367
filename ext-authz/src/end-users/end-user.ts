import type { JWTPayload } from 'jose';
import { AuthzError, REASONS } from '../errors.js';
import type { EndUsersConfig } from './manifest.js';

/**
 * The verified end user as the policy sees it: a small, explicit projection
 * of the claims the manifest names. The subject is kept for the decision log
 * and the upstream header, but is not part of the policy input, so one
 * tenant's users share cache entries.
 */
export interface EndUser {
  issuer: string;
  tenant: string | null;
  tier: string | null;
  /** Sorted, without duplicates. */
  scopes: string[];
}

export interface VerifiedToken {
  readonly endUser: EndUser;
  readonly subject: string | null;
  /** The token's exp, epoch milliseconds: nothing resting on this token may outlive it. */
  readonly expiresAtMs: number;
}

const MAX_CLAIM = 256;
const VALUE = /^[\x21-\x7e]+$/;

function invalid(why: string): AuthzError {
  return new AuthzError(REASONS.invalid_token, why);
}

function claimValue(payload: JWTPayload, claim: string | null): string | null {
  if (claim === null) return null;
  const v = payload[claim];
  if (v === undefined) return null;
  if (typeof v !== 'string' || v.length === 0 || v.length > MAX_CLAIM || !VALUE.test(v)) {
    throw invalid(`claim "${claim}" is not a short printable string`);
  }
  return v;
}

function scopesOf(payload: JWTPayload, claim: string | null): string[] {
  if (claim === null) return [];
  const v = payload[claim];
  if (v === undefined) return [];
  const list = typeof v === 'string' ? v.split(' ').filter((s) => s !== '') : v;
  if (!Array.isArray(list) || list.length > 64 || !list.every((s) => typeof s === 'string' && s.length > 0 && s.length <= MAX_CLAIM && VALUE.test(s))) {
    throw invalid(`claim "${claim}" is not a space-separated string or a list of scopes`);
  }
  return [...new Set(list as string[])].sort();
}

/** Projects a verified payload (signature, iss, aud, exp already checked) onto what the policy sees. */
export function verifiedToken(payload: JWTPayload, claims: EndUsersConfig['claims']): VerifiedToken {
  if (typeof payload.exp !== 'number') throw invalid('token has no exp');
  return {
    endUser: { issuer: payload.iss!, tenant: claimValue(payload, claims.tenant), tier: claimValue(payload, claims.tier), scopes: scopesOf(payload, claims.scopes) },
    subject: claimValue(payload, claims.subject),
    expiresAtMs: payload.exp * 1000,
  };
}
