import { describe, expect, it } from 'vitest';
import type { Verdict } from '../../ext-authz/src/authorizer.js';
import { toCheckResponse } from '../../ext-authz/src/check-response.js';
import type { PolicyDecision } from '../../ext-authz/src/decision.js';
import { EncodedAllows } from '../../ext-authz/src/encoded-allows.js';
import type { PolicyInput } from '../../ext-authz/src/policy-input.js';
import { authorizationService, encodeCheckResponse } from '../../ext-authz/src/protos.js';

const decode = authorizationService().Check!.responseDeserialize as (b: Buffer) => unknown;
const encode = encodeCheckResponse();

const allowed: PolicyDecision = { allowed: true, code: 'allowed', rule: 'gateway-predicts', httpStatus: null };
const tenantInput = { end_user: { tenant: 'acme', tier: 'premium' } } as unknown as PolicyInput;

function hit(over: Partial<Verdict> = {}): Verdict {
  return {
    decisionId: crypto.randomUUID(), allowed: true, code: 'allowed', rule: 'gateway-predicts', httpStatus: 200,
    caller: 'spiffe://cluster.local/ns/gateway/sa/api-gateway', input: null, cacheHit: true, revision: '0123456789ab',
    detail: null, rawPath: null, subject: null, decision: allowed, ...over,
  };
}

describe('cache hits that allow, answered with bytes encoded once per cached decision', () => {
  it.each([
    ['a workload', {}],
    ['an end user of a tenant', { input: tenantInput, subject: 'user-7' }],
    ['another subject of that tenant', { input: tenantInput, subject: 'user-8' }],
    ['an end user whose subject is empty', { input: tenantInput, subject: '' }],
  ])('decode exactly as the one-piece encoding, for %s, each with its own decision id', (_who, over) => {
    const enc = new EncodedAllows(encode, false);
    for (let i = 0; i < 3; i++) {
      const v = hit(over);
      const bytes = enc.forHit(v);
      expect(bytes).not.toBeNull();
      expect(decode(bytes!)).toEqual(decode(encode(toCheckResponse(v, false))));
      expect(JSON.stringify(decode(bytes!))).toContain(v.decisionId);
    }
  });

  it('keep each subject\'s headers apart under one cached decision', () => {
    const enc = new EncodedAllows(encode, false);
    const a = hit({ input: tenantInput, subject: 'user-7' });
    const b = hit({ input: tenantInput, subject: 'user-8' });
    enc.forHit(a);
    expect(decode(enc.forHit(b)!)).toEqual(decode(encode(toCheckResponse(b, false))));
    // An empty subject is sent as such; no subject removes the header: not the same answer.
    const empty = hit({ input: tenantInput, subject: '' });
    const none = hit({ input: tenantInput, subject: null });
    enc.forHit(empty);
    expect(decode(enc.forHit(none)!)).toEqual(decode(encode(toCheckResponse(none, false))));
  });

  it('are not used for a miss, a deny, or a verdict without a cached decision', () => {
    const enc = new EncodedAllows(encode, false);
    expect(enc.forHit(hit({ cacheHit: false }))).toBeNull();
    expect(enc.forHit(hit({ allowed: false, code: 'no_matching_rule', rule: null, decision: { allowed: false, code: 'no_matching_rule', rule: null, httpStatus: null } }))).toBeNull();
    const { decision: _d, ...noDecision } = hit();
    expect(enc.forHit(noDecision)).toBeNull();
  });

  it('answer a dry-run server\'s denied hit as the allow it sends, with the dry-run header', () => {
    const enc = new EncodedAllows(encode, true);
    const v = hit({ allowed: false, code: 'no_matching_rule', rule: null, decision: { allowed: false, code: 'no_matching_rule', rule: null, httpStatus: null } });
    expect(decode(enc.forHit(v)!)).toEqual(decode(encode(toCheckResponse(v, true))));
  });

  it('are per decision object: a new cache entry (another revision, a re-evaluation) is encoded anew', () => {
    const enc = new EncodedAllows(encode, false);
    enc.forHit(hit());
    const v = hit({ rule: 'other-rule', decision: { ...allowed, rule: 'other-rule' } });
    expect(decode(enc.forHit(v)!)).toEqual(decode(encode(toCheckResponse(v, false))));
  });
});
