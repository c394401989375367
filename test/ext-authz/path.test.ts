import { describe, expect, it } from 'vitest';
import { AuthzError } from '../../ext-authz/src/errors.js';
import { normalisePath } from '../../ext-authz/src/path.js';

const SEMICOLONS = { allowSemicolons: true };

function refusal(target: string, opts = { allowSemicolons: false }): string {
  try {
    normalisePath(target, opts);
  } catch (err) {
    expect(err).toBeInstanceOf(AuthzError);
    expect((err as AuthzError).code).toBe('invalid_path');
    return (err as AuthzError).message;
  }
  throw new Error(`${target} was accepted`);
}

describe('path normalisation', () => {
  // What every common model server reads alike: only the query is cut and escapes decoded once.
  it.each([
    ['/v1/models/bert:predict', '/v1/models/bert:predict'],
    ['/v1/models/bert:predict?verbose=1', '/v1/models/bert:predict'],
    ['/v1/models/bert:predict?q=%2F;x=..//', '/v1/models/bert:predict'],
    ['/', '/'],
    ['/v1/models/', '/v1/models/'],
    ['/%61dmin', '/admin'],
    ['/v1/models/%7Euser', '/v1/models/~user'],
    ['/v1/models/b%C3%A9rt', '/v1/models/bért'],
    ['/v1/models/a%20b', '/v1/models/a b'],
    // "+" is a space only in form-encoded queries; in a path every server keeps it.
    ['/v1/models/a+b', '/v1/models/a+b'],
    // Not dot segments: names that merely contain dots.
    ['/.well-known/x', '/.well-known/x'],
    ['/v1/models/..foo/bar.', '/v1/models/..foo/bar.'],
    ['/v1/models/.../x', '/v1/models/.../x'],
    ['/v1/models/a%2Eb', '/v1/models/a.b'],
    // A fullwidth solidus is an ordinary character to every Linux server (only IIS "best fit" maps it to "/").
    ['/v1/models/a%EF%BC%8Fb', '/v1/models/a／b'],
    // Case is kept: rules match case-sensitively, as Linux servers route.
    ['/V1/Models/X', '/V1/Models/X'],
  ])('reads %s as %s', (input, expected) => {
    expect(normalisePath(input)).toBe(expected);
  });

  // Hostile request-targets: each is refused with a reason naming the trick.
  it.each([
    ['', 'empty path'],
    ['admin', 'path does not start with "/"'],
    ['http://evil/admin', 'path does not start with "/"'],
    ['*', 'path does not start with "/"'],
    ['/v1/models/bert:predict#frag', 'raw hash (#): a request-target carries no fragment'],
    ['/v1/models/llama/config#/../weights/shard-0', 'raw hash (#): a request-target carries no fragment'],
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
    // U+0085 NEL, a C1 control: a line break to some log readers.
    ['/v1/models/x%C2%85y', 'encoded control character'],
    ['/v1/models/x%', 'truncated percent-encoding'],
    ['/v1/models/x%2', 'truncated percent-encoding'],
    ['/v1/models/x%zz', 'invalid percent-encoding'],
    // IIS's %u escapes: no Linux server decodes them, and a server that did would see "."
    ['/v1/models/%u002e%u002e/admin', 'invalid percent-encoding'],
    ['/v1/models/x%C3', 'percent-encoding is not valid UTF-8'],
    ['/v1/models/%C0%AE%C0%AE/admin', 'percent-encoding is not valid UTF-8'],
    ['/v1\\..\\admin', 'raw backslash'],
    ['/v1/models/x\ty', 'raw control character'],
    ['/v1/models/x\u0000', 'raw control character'],
    ['/v1/models/x y', 'raw space'],
    ['/v1/models/bért', 'raw non-ASCII character'],
    [`/${'a'.repeat(9000)}`, 'path longer than 8192 bytes'],
  ])('refuses %j (%s)', (input, why) => {
    expect(refusal(input)).toBe(why);
  });

  // Servlet containers (Tomcat, Jetty, Spring) strip ";params" from each segment and Tomcat reads
  // "..;" as "..": a deny rule on /v1/models/*/weights/** would not see the weights they serve.
  it.each([
    ['/v1/models/llama/weights;/shard-0', 4],
    ['/v1/models/llama/..;/llama/weights/shard-0', 4],
    ['/v1/models/llama/.;/weights/shard-0', 4],
    ['/v1/models/llama;v=1/weights/shard-0', 3],
    ['/v1/models/llama/weights/shard-0;jsessionid=1', 5],
  ])('refuses the path parameter in %s', (input, segment) => {
    expect(refusal(input)).toBe(`semicolon (;) in segment ${segment}: servlet containers strip ";" path parameters; see requestPaths.allowSemicolons`);
  });

  it.each([
    ['/v1/models/llama/weights%3B/shard-0', 4],
    ['/v1/models/llama/weights%3b/shard-0', 4],
  ])('refuses the encoded semicolon in %s', (input, segment) => {
    expect(refusal(input)).toBe(`encoded semicolon (%3B) in segment ${segment}: servlet containers strip ";" path parameters; see requestPaths.allowSemicolons`);
  });

  it('reads ";" as an ordinary character when the manifest says the model server does', () => {
    expect(normalisePath('/v1/models/llama;v=2/infer', SEMICOLONS)).toBe('/v1/models/llama;v=2/infer');
    expect(normalisePath('/v1/models/llama%3Bv=2/infer', SEMICOLONS)).toBe('/v1/models/llama;v=2/infer');
    // The opt-in is about ";" only: a dot segment next to it is still refused.
    expect(refusal('/v1/models/../weights;', SEMICOLONS)).toMatch(/^dot segment/);
  });

  // Dot segments: Tomcat, nginx and Go's ServeMux resolve them, uvicorn/Starlette (vLLM, KServe),
  // Express and Netty (TorchServe) route on them as they are. Envoy's normalize_path resolves them
  // for both this server and the upstream; one that reaches us was not normalised.
  it.each([
    ['/v1/models/llama/weights/../../public', 'dot segment ".." at segment 5'],
    ['/v1/models/x/../weights/shard-0', 'dot segment ".." at segment 4'],
    ['/v1/./models/x', 'dot segment "." at segment 2'],
    ['/v1/models/x/..', 'dot segment ".." at segment 4'],
    ['/v1/models/x/.', 'dot segment "." at segment 4'],
    ['/..', 'dot segment ".." at segment 1'],
    ['/v1/../../admin', 'dot segment ".." at segment 2'],
  ])('refuses the dot segment in %s', (input, why) => {
    expect(refusal(input)).toBe(`${why}: resolve dot segments in Envoy (normalize_path)`);
  });

  it.each([
    ['/v1/models/%2e%2e/%2e%2e/admin', 'percent-encoded dot segment ".." at segment 3'],
    ['/v1/models/.%2E/admin', 'percent-encoded dot segment ".." at segment 3'],
    ['/%2e/admin', 'percent-encoded dot segment "." at segment 1'],
    ['/%2e%2e/admin', 'percent-encoded dot segment ".." at segment 1'],
  ])('refuses the encoded dot segment in %s', (input, why) => {
    expect(refusal(input)).toBe(`${why}: resolve dot segments in Envoy (normalize_path)`);
  });

  // Empty segments: nginx and Tomcat merge them, uvicorn keeps them, Jetty 12 rejects them, Go redirects.
  it.each([
    ['//admin', 1],
    ['//admin/dashboard', 1],
    ['/v1//models/x', 2],
    ['///v1', 1],
    ['/v1/models//', 3],
  ])('refuses the empty segment in %s', (input, segment) => {
    expect(refusal(input)).toBe(`empty segment (//) at segment ${segment}: merge slashes in Envoy (merge_slashes)`);
  });

  it('decodes only once, so a decoded escape is never decoded again', () => {
    // %2541 would become %41 and then A under double decoding; it is refused instead.
    expect(refusal('/v1/%2541')).toMatch(/double encoding/);
  });

  it('never reads a leading // as an authority (the OPA-Envoy //admin bypass)', () => {
    expect(refusal('//admin/dashboard')).toMatch(/^empty segment/);
  });
});
