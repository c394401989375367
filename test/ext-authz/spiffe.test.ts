import { describe, expect, it } from 'vitest';
import { parseSpiffeId, spiffeIdError } from '../../ext-authz/src/spiffe.js';

describe('SPIFFE IDs', () => {
  it('parses an Istio workload identity into trust domain, namespace and service account', () => {
    expect(parseSpiffeId('spiffe://cluster.local/ns/ml/sa/model-server')).toEqual({
      id: 'spiffe://cluster.local/ns/ml/sa/model-server',
      trustDomain: 'cluster.local',
      path: '/ns/ml/sa/model-server',
      namespace: 'ml',
      serviceAccount: 'model-server',
    });
  });

  it('parses a non-Istio path without namespace or service account', () => {
    expect(parseSpiffeId('spiffe://prod.example.org/payments/Batch_1')).toMatchObject({ trustDomain: 'prod.example.org', path: '/payments/Batch_1', namespace: null, serviceAccount: null });
    expect(parseSpiffeId('spiffe://td/ns/a/sa/b/extra')).toMatchObject({ namespace: null, serviceAccount: null });
  });

  it('accepts a bare trust domain ID', () => {
    expect(parseSpiffeId('spiffe://cluster.local')).toMatchObject({ trustDomain: 'cluster.local', path: '' });
  });

  it.each([
    ['', 'SPIFFE ID cannot be empty'],
    ['cluster.local/ns/a/sa/b', 'scheme is missing or invalid'],
    ['SPIFFE://cluster.local/ns/a', 'scheme is missing or invalid'],
    ['https://cluster.local/ns/a', 'scheme is missing or invalid'],
    ['spiffe://', 'trust domain is missing'],
    ['spiffe:///ns/a', 'trust domain is missing'],
    ['spiffe://Cluster.local/ns/a', 'trust domain characters are limited to lowercase letters, numbers, dots, dashes, and underscores'],
    ['spiffe://user@cluster.local/ns/a', 'trust domain cannot contain userinfo'],
    ['spiffe://cluster.local:443/ns/a', 'trust domain cannot contain a port'],
    ['spiffe://clu%73ter.local/ns/a', 'trust domain cannot be percent-encoded'],
    ['spiffe://[::1]/ns/a', 'trust domain characters are limited to lowercase letters, numbers, dots, dashes, and underscores'],
    ['spiffe://cluster.local/ns//a', 'path cannot contain empty segments'],
    ['spiffe://cluster.local/ns/a/', 'path cannot have a trailing slash'],
    ['spiffe://cluster.local/ns/./a', 'path cannot contain dot segments'],
    ['spiffe://cluster.local/ns/../a', 'path cannot contain dot segments'],
    ['spiffe://cluster.local/ns/a%2Fb', 'path cannot be percent-encoded'],
    ['spiffe://cluster.local/ns/a?x=1', 'SPIFFE ID cannot contain a query'],
    ['spiffe://cluster.local?x=1', 'SPIFFE ID cannot contain a query'],
    ['spiffe://cluster.local/ns/a#frag', 'SPIFFE ID cannot contain a fragment'],
    ['spiffe://cluster.local/ns/a b', 'path segment characters are limited to letters, numbers, dots, dashes, and underscores'],
    ['spiffe://cluster.local/ns/ä', 'path segment characters are limited to letters, numbers, dots, dashes, and underscores'],
    [`spiffe://cluster.local/${'a'.repeat(2040)}`, 'SPIFFE ID is longer than 2048 bytes'],
  ])('rejects %j: %s', (id, why) => {
    expect(spiffeIdError(id)).toBe(why);
    expect(parseSpiffeId(id)).toBeNull();
  });

  it('accepts an ID of exactly 2048 bytes', () => {
    const id = `spiffe://cluster.local/${'a'.repeat(2048 - 'spiffe://cluster.local/'.length)}`;
    expect(id.length).toBe(2048);
    expect(spiffeIdError(id)).toBeNull();
  });
});
