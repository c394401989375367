import { describe, expect, it } from 'vitest';
import { bearerToken } from '../../ext-authz/src/end-users/bearer-token.js';
import { AuthzError } from '../../ext-authz/src/errors.js';

const JWT = 'eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJ4In0.c2ln';
const http = (headers: Record<string, string>) => ({ method: 'POST', path: '/', headers });

function refusal(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect((err as AuthzError).code).toBe('invalid_token');
    return (err as AuthzError).message;
  }
  throw new Error('accepted');
}

describe('the end-user token of a request', () => {
  it('is the Bearer credential of authorization, whatever the scheme case', () => {
    expect(bearerToken(http({ authorization: `Bearer ${JWT}` }), 'authorization')).toBe(JWT);
    expect(bearerToken(http({ authorization: `bearer  ${JWT} ` }), 'authorization')).toBe(JWT);
  });

  it('is absent without the header, or with another scheme (the model server may use Basic)', () => {
    expect(bearerToken(http({}), 'authorization')).toBeNull();
    expect(bearerToken(http({ authorization: 'Basic dXNlcjpwYXNz' }), 'authorization')).toBeNull();
  });

  it('is the bare value of a configured header', () => {
    expect(bearerToken(http({ 'x-user-token': JWT }), 'x-user-token')).toBe(JWT);
    expect(bearerToken(http({ authorization: `Bearer ${JWT}` }), 'x-user-token')).toBeNull();
  });

  it.each([
    [{ authorization: 'Bearer' }, 'empty bearer token'],
    [{ authorization: 'Bearer not-a-jwt' }, 'not a compact JWT (three base64url parts)'],
    [{ authorization: `Bearer ${JWT}.extra` }, 'not a compact JWT (three base64url parts)'],
    [{ authorization: `Bearer ${'a'.repeat(16_400)}` }, 'token longer than 16384 bytes'],
  ])('refuses %j: %s', (headers, why) => {
    expect(refusal(() => bearerToken(http(headers), 'authorization'))).toBe(why);
  });
});
