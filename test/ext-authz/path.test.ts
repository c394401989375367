import { describe, expect, it } from 'vitest';
import { AuthzError } from '../../ext-authz/src/errors.js';
import { normalisePath } from '../../ext-authz/src/path.js';

function refusal(target: string): string {
  try {
    normalisePath(target);
  } catch (err) {
    expect(err).toBeInstanceOf(AuthzError);
    expect((err as AuthzError).code).toBe('invalid_path');
    return (err as AuthzError).message;
  }
  throw new Error(`${target} was accepted`);
}

describe('path normalisation', () => {
  it.each([
    ['/v1/models/bert:predict', '/v1/models/bert:predict'],
    ['/v1/models/bert:predict?verbose=1', '/v1/models/bert:predict'],
    ['/v1/models/bert:predict#frag', '/v1/models/bert:predict'],
    ['/v1/models/bert:predict?q=%2F', '/v1/models/bert:predict'],
    ['/', '/'],
    ['//admin', '/admin'],
    ['///v1///models//x', '/v1/models/x'],
    ['/v1/./models/x', '/v1/models/x'],
    ['/v1/models/../admin', '/v1/admin'],
    ['/v1/models/x/..', '/v1/models/'],
    ['/v1/models/x/.', '/v1/models/x/'],
    ['/v1/models/', '/v1/models/'],
    ['/a/b/../../c', '/c'],
    ['/%61dmin', '/admin'],
    ['/v1/models/%2e%2e/%2e%2e/admin', '/admin'],
    ['/v1/models/b%C3%A9rt', '/v1/models/bért'],
    ['/v1/models/a%20b', '/v1/models/a b'],
    ['/v1/models/a;b:predict', '/v1/models/a;b:predict'],
  ])('normalises %s to %s', (input, expected) => {
    expect(normalisePath(input)).toBe(expected);
  });

  // Hostile request-targets: each must be refused, with a reason naming the trick.
  it.each([
    ['', 'empty path'],
    ['admin', 'path does not start with "/"'],
    ['http://evil/admin', 'path does not start with "/"'],
    ['*', 'path does not start with "/"'],
    ['/v1/models/a%2Fb:predict', 'encoded slash (%2F)'],
    ['/v1/models/a%2fb', 'encoded slash (%2F)'],
    ['/v1/models/..%2F..%2Fadmin', 'encoded slash (%2F)'],
    ['/v1/models/a%5Cb', 'encoded backslash (%5C)'],
    ['/v1/models/%252e%252e/admin', 'encoded percent sign (%25), i.e. double encoding'],
    ['/v1/models/x%3F.json', 'encoded question mark (%3F)'],
    ['/v1/models/x%23frag', 'encoded hash (%23)'],
    ['/v1/models/x%00.json', 'encoded NUL (%00)'],
    ['/v1/models/x%0d%0aX-Injected:1', 'encoded control character'],
    ['/v1/models/x%7F', 'encoded control character'],
    ['/v1/models/x%', 'truncated percent-encoding'],
    ['/v1/models/x%2', 'truncated percent-encoding'],
    ['/v1/models/x%zz', 'invalid percent-encoding'],
    ['/v1/models/x%C3', 'percent-encoding is not valid UTF-8'],
    ['/v1/models/%C0%AE%C0%AE/admin', 'percent-encoding is not valid UTF-8'],
    ['/v1\\..\\admin', 'raw backslash'],
    ['/v1/models/x\ty', 'raw control character'],
    ['/v1/models/x\u0000', 'raw control character'],
    ['/v1/models/x y', 'raw space'],
    ['/v1/models/bért', 'raw non-ASCII character'],
    ['/..', 'dot-dot segment climbs above the root'],
    ['/v1/../../admin', 'dot-dot segment climbs above the root'],
    ['/%2e%2e/admin', 'dot-dot segment climbs above the root'],
    [`/${'a'.repeat(9000)}`, 'path longer than 8192 bytes'],
  ])('refuses %j (%s)', (input, why) => {
    expect(refusal(input)).toBe(why);
  });

  it('decodes only once, so a decoded escape is never decoded again', () => {
    // %2541 would become %41 and then A under double decoding; it is refused instead.
    expect(refusal('/v1/%2541')).toMatch(/double encoding/);
  });

  it('does not treat a leading // as an authority (the OPA-Envoy //admin bypass)', () => {
    expect(normalisePath('//admin/dashboard')).toBe('/admin/dashboard');
  });
});
