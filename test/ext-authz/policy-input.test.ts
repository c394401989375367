import { describe, expect, it } from 'vitest';
import { cacheKey, serialiseInput } from '../../ext-authz/src/cache-key.js';
import { AuthzError } from '../../ext-authz/src/errors.js';
import { toPolicyInput, type InputOptions } from '../../ext-authz/src/policy-input.js';
import { httpCheck } from '../helpers/authz-client.js';

const OPTS: InputOptions = { trustXfcc: false, inputHeaders: [] };
const GATEWAY = 'spiffe://cluster.local/ns/gateway/sa/api-gateway';

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    return (err as AuthzError).code;
  }
  return 'accepted';
}

describe('CheckRequest → policy input', () => {
  it('projects identity parts, host, method and normalised path, and nothing else', () => {
    const input = toPolicyInput(httpCheck(GATEWAY, 'POST', '/v1/m%6Fdels/bert:predict?x=1', 'Model-Serving.ML.svc.cluster.local:8080', { authorization: 'Bearer secret' }), OPTS);
    expect(input).toEqual({
      caller: { id: GATEWAY, trust_domain: 'cluster.local', path: '/ns/gateway/sa/api-gateway', namespace: 'gateway', service_account: 'api-gateway' },
      kind: 'http',
      host: 'model-serving.ml.svc.cluster.local',
      method: 'POST',
      path: '/v1/models/bert:predict',
      headers: null,
      // Filled in only once an end-user token has been verified.
      end_user: null,
    });
  });

  it('copies only the listed headers, in a fixed order, with null for absent ones', () => {
    const input = toPolicyInput(httpCheck(GATEWAY, 'GET', '/', 'h', { 'x-tenant': 'blue', 'x-other': 'no' }), { trustXfcc: false, inputHeaders: ['x-model-version', 'x-tenant'] });
    expect(input.headers).toEqual({ 'x-model-version': null, 'x-tenant': 'blue' });
    expect(Object.keys(input.headers!)).toEqual(['x-model-version', 'x-tenant']);
  });

  it('reads headers from header_map when Envoy sends raw headers', () => {
    const req = httpCheck(GATEWAY, 'GET', '/', 'h');
    const http = req.attributes.request.http as Record<string, unknown>;
    delete http.headers;
    http.header_map = { headers: [{ key: 'x-tenant', raw_value: Buffer.from('a') }, { key: 'x-tenant', raw_value: Buffer.from('b') }] };
    expect(toPolicyInput(req, { trustXfcc: false, inputHeaders: ['x-tenant'] }).headers).toEqual({ 'x-tenant': 'a,b' });
  });

  it('makes a check without an HTTP section (Envoy network filter) a tcp input', () => {
    const input = toPolicyInput({ attributes: { source: { principal: GATEWAY } } }, OPTS);
    expect(input).toMatchObject({ kind: 'tcp', host: null, method: null, path: null });
  });

  it.each([
    ['no attributes', {}, 'invalid_request'],
    ['null attributes', { attributes: null }, 'invalid_request'],
    ['no principal', httpCheck(undefined, 'GET', '/'), 'no_identity'],
    ['an empty principal', httpCheck('', 'GET', '/'), 'no_identity'],
    ['a DNS principal (no URI SAN)', httpCheck('model-serving.ml.svc', 'GET', '/'), 'invalid_identity'],
    ['a principal with a query', httpCheck('spiffe://cluster.local/ns/a?x', 'GET', '/'), 'invalid_identity'],
    ['a missing method', httpCheck(GATEWAY, '', '/'), 'invalid_request'],
    ['a method with a space', httpCheck(GATEWAY, 'GET /x', '/'), 'invalid_request'],
    ['a missing path', httpCheck(GATEWAY, 'GET', ''), 'invalid_path'],
    ['an absolute-form target', httpCheck(GATEWAY, 'GET', 'http://evil/admin'), 'invalid_path'],
    ['a bad host', httpCheck(GATEWAY, 'GET', '/', 'evil.com@models'), 'invalid_host'],
  ])('refuses %s', (_name, req, expected) => {
    expect(code(() => toPolicyInput(req as never, OPTS))).toBe(expected);
  });

  it('refuses an oversized listed header instead of truncating it', () => {
    const req = httpCheck(GATEWAY, 'GET', '/', 'h', { 'x-tenant': 'a'.repeat(9000) });
    expect(code(() => toPolicyInput(req, { trustXfcc: false, inputHeaders: ['x-tenant'] }))).toBe('invalid_request');
  });

  describe('with --trust-xfcc', () => {
    const xfccOpts: InputOptions = { trustXfcc: true, inputHeaders: [] };
    it('takes the caller from the last XFCC element, not the peer', () => {
      const req = httpCheck('spiffe://cluster.local/ns/istio-system/sa/ingress', 'GET', '/', 'h', {
        'x-forwarded-client-cert': `URI=spiffe://cluster.local/ns/x/sa/forged,By=spiffe://cluster.local/ns/ml/sa/m;URI=${GATEWAY}`,
      });
      expect(toPolicyInput(req, xfccOpts).caller.id).toBe(GATEWAY);
    });
    it('denies without the header', () => {
      expect(code(() => toPolicyInput(httpCheck(GATEWAY, 'GET', '/'), xfccOpts))).toBe('no_identity');
    });
    it('ignores XFCC unless enabled', () => {
      const req = httpCheck(GATEWAY, 'GET', '/', 'h', { 'x-forwarded-client-cert': 'URI=spiffe://cluster.local/ns/x/sa/forged' });
      expect(toPolicyInput(req, OPTS).caller.id).toBe(GATEWAY);
    });
  });
});

describe('decision cache key', () => {
  const input = toPolicyInput(httpCheck(GATEWAY, 'POST', '/v1/models/a:predict'), OPTS);

  it('is the serialised input plus the policy revision', () => {
    expect(cacheKey(serialiseInput(input), 'rev1')).toBe(`rev1|${JSON.stringify(input)}`);
  });

  it('changes with the revision, so an old policy can never answer for a new one', () => {
    expect(cacheKey(serialiseInput(input), 'rev1')).not.toBe(cacheKey(serialiseInput(input), 'rev2'));
  });

  it('differs for requests that differ only in what the policy sees', () => {
    const keys = new Set(
      [
        httpCheck(GATEWAY, 'POST', '/v1/models/a:predict'),
        httpCheck(GATEWAY, 'GET', '/v1/models/a:predict'),
        httpCheck(GATEWAY, 'POST', '/v1/models/b:predict'),
        httpCheck(GATEWAY, 'POST', '/v1/models/a:predict', 'other-host'),
        httpCheck('spiffe://cluster.local/ns/gateway/sa/other', 'POST', '/v1/models/a:predict'),
      ].map((r) => cacheKey(serialiseInput(toPolicyInput(r, OPTS)), 'r')),
    );
    expect(keys.size).toBe(5);
  });

  it('is the same for requests that differ only in what the policy does not see', () => {
    const a = toPolicyInput(httpCheck(GATEWAY, 'POST', '/v1/models/a:predict?x=1', 'h', { 'x-request-id': '1' }), OPTS);
    const b = toPolicyInput(httpCheck(GATEWAY, 'POST', '/v1/%6Dodels/a:predict', 'H:443', { 'x-request-id': '2' }), OPTS);
    expect(serialiseInput(a)).toBe(serialiseInput(b));
  });

  it('reads the path with the policy\'s path options: ";" only where the manifest allows it', () => {
    const req = httpCheck(GATEWAY, 'GET', '/v1/models/a;v=2');
    expect(code(() => toPolicyInput(req, OPTS))).toBe('invalid_path');
    expect(toPolicyInput(req, OPTS, { allowSemicolons: true }).path).toBe('/v1/models/a;v=2');
  });

  it('includes listed headers', () => {
    const opts = { trustXfcc: false, inputHeaders: ['x-tenant'] };
    const a = toPolicyInput(httpCheck(GATEWAY, 'GET', '/', 'h', { 'x-tenant': 'a' }), opts);
    const b = toPolicyInput(httpCheck(GATEWAY, 'GET', '/', 'h', { 'x-tenant': 'b' }), opts);
    expect(serialiseInput(a)).not.toBe(serialiseInput(b));
  });
});
