import type { HttpRequest } from '../check-request.js';
import { AuthzError, REASONS } from '../errors.js';

/** A compact JWS is three base64url parts; anything much longer is not a token a gateway sends. */
export const MAX_TOKEN_BYTES = 16_384;
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

/**
 * The end-user token of a request, or null when it carries none. In
 * `authorization` only the Bearer scheme is a token (Basic and other schemes
 * are the model server's business); any other configured header holds the
 * bare JWT. A token that is present but cannot be a JWT is refused here,
 * before any key is looked up.
 */
export function bearerToken(http: HttpRequest, header: string): string | null {
  const raw = http.headers?.[header];
  if (raw === undefined || raw === '') return null;
  let token = raw.trim();
  if (header === 'authorization') {
    const space = token.indexOf(' ');
    const scheme = space === -1 ? token : token.slice(0, space);
    if (scheme.toLowerCase() !== 'bearer') return null;
    token = space === -1 ? '' : token.slice(space + 1).trim();
  }
  if (token.length === 0) throw new AuthzError(REASONS.invalid_token, 'empty bearer token');
  if (token.length > MAX_TOKEN_BYTES) throw new AuthzError(REASONS.invalid_token, `token longer than ${MAX_TOKEN_BYTES} bytes`);
  if (!COMPACT_JWS.test(token)) throw new AuthzError(REASONS.invalid_token, 'not a compact JWT (three base64url parts)');
  return token;
}
