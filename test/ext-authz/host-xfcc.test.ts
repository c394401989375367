import { describe, expect, it } from 'vitest';
import { normaliseHost } from '../../ext-authz/src/host.js';
import { lastXfccUri } from '../../ext-authz/src/xfcc.js';

describe('host normalisation', () => {
  it.each([
    ['model-serving.ml.svc.cluster.local', 'model-serving.ml.svc.cluster.local'],
    ['Model-Serving.ML:8080', 'model-serving.ml'],
    ['models.internal.', 'models.internal'],
    ['[::1]:8443', '[::1]'],
    ['127.0.0.1:80', '127.0.0.1'],
    ['', ''],
  ])('normalises %j to %j', (raw, host) => {
    expect(normaliseHost(raw)).toBe(host);
  });

  it.each([
    ['models.ml:http', 'bad port'],
    ['models.ml:', 'bad port'],
    ['models ml', 'host contains a character outside [a-z0-9._-]'],
    ['models.ml%00', 'host contains a character outside [a-z0-9._-]'],
    ['evil.com@models.ml', 'host contains a character outside [a-z0-9._-]'],
    // U+212A KELVIN SIGN lower-cases to an ASCII "k": it must not become kserve.models.internal.
    ['\u212Aserve.models.internal', 'host contains a character outside [a-z0-9._-]'],
    ['models.\u0130nternal', 'host contains a character outside [a-z0-9._-]'],
    ['[::1', 'unterminated IPv6 literal'],
    ['[zz]', 'bad IPv6 literal'],
    [`${'a'.repeat(256)}`, 'host longer than 255 bytes'],
  ])('refuses %j: %s', (raw, why) => {
    expect(() => normaliseHost(raw)).toThrow(why);
  });
});

describe('x-forwarded-client-cert', () => {
  it('takes the URI of the last element, the one the trusted proxy added', () => {
    const xfcc =
      'By=spiffe://cluster.local/ns/a/sa/b;URI=spiffe://cluster.local/ns/forged/sa/x,' +
      'By=spiffe://cluster.local/ns/ml/sa/model;Hash=abc;Subject="CN=x, O=y; z";URI=spiffe://cluster.local/ns/gateway/sa/api-gateway';
    expect(lastXfccUri(xfcc)).toBe('spiffe://cluster.local/ns/gateway/sa/api-gateway');
  });

  it('is not fooled by separators inside quoted values', () => {
    expect(lastXfccUri('Subject="a,URI=spiffe://evil/x";URI=spiffe://td/ok')).toBe('spiffe://td/ok');
  });

  it.each([
    ['an element without a URI', 'By=spiffe://td/a;Hash=1', null],
    ['a repeated URI in one element', 'URI=spiffe://td/a;URI=spiffe://td/b', null],
    ['an unterminated quote', 'Subject="abc;URI=spiffe://td/a', null],
    ['garbage', 'not an xfcc header', null],
  ])('returns null for %s', (_name, xfcc, expected) => {
    expect(lastXfccUri(xfcc)).toBe(expected);
  });
});
