import { describe, expect, it } from 'vitest';
import type { Verdict } from '../../ext-authz/src/authorizer.js';
import { toCheckResponse } from '../../ext-authz/src/check-response.js';
import { toDecision } from '../../ext-authz/src/decision.js';
import { AuthzError, outcomeFor } from '../../ext-authz/src/errors.js';

describe('policy result → decision', () => {
  it('accepts the default policy contract', () => {
    expect(toDecision({ allowed: true, code: 'allowed', rule: 'r1' })).toEqual({ allowed: true, code: 'allowed', rule: 'r1', httpStatus: null });
    expect(toDecision({ allowed: false, code: 'quarantined', rule: null })).toEqual({ allowed: false, code: 'quarantined', rule: null, httpStatus: null });
  });

  it('fills in codes a minimal custom policy leaves out', () => {
    expect(toDecision({ allowed: true }).code).toBe('allowed');
    expect(toDecision({ allowed: false }).code).toBe('no_matching_rule');
  });

  it('keeps a custom deny reason and status', () => {
    expect(toDecision({ allowed: false, code: 'tenant_mismatch', http_status: 429 })).toEqual({ allowed: false, code: 'tenant_mismatch', rule: null, httpStatus: 429 });
  });

  it.each([
    ['undefined (no rule produced a value)', undefined],
    ['a bare boolean', true],
    ['an array', [{ allowed: true }]],
    ['allowed as a string', { allowed: 'true' }],
    ['a code that is not snake_case', { allowed: false, code: 'Bad Code' }],
    ['a code that could inject a header', { allowed: false, code: 'x\r\nset-cookie: a' }],
    ['an allow with a deny code', { allowed: true, code: 'quarantined' }],
    ['a deny with code "allowed"', { allowed: false, code: 'allowed' }],
    ['a status on an allow', { allowed: true, http_status: 403 }],
    ['a status that is not an error', { allowed: false, http_status: 200 }],
    ['a status Envoy does not define', { allowed: false, http_status: 418 }],
    ['a rule name with spaces', { allowed: false, rule: 'a b' }],
  ])('denies as policy_error when the policy returns %s', (_name, raw) => {
    let err: unknown;
    try {
      toDecision(raw);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(AuthzError);
    expect((err as AuthzError).code).toBe('policy_error');
  });
});

function verdict(over: Partial<Verdict>): Verdict {
  return {
    decisionId: '00000000-0000-4000-8000-000000000000',
    allowed: false,
    code: 'no_matching_rule',
    rule: null,
    httpStatus: 403,
    caller: 'spiffe://td/ns/a/sa/b',
    input: null,
    cacheHit: false,
    revision: 'abc',
    detail: null,
    rawPath: null,
    subject: null,
    ...over,
  };
}

const headers = (list: Array<{ header: { key: string; value: string } }> | undefined) => Object.fromEntries((list ?? []).map((h) => [h.header.key, h.header.value]));

describe('decision → CheckResponse', () => {
  it('always sets an explicit status, since an unset one means allow to Envoy', () => {
    for (const code of ['allowed', 'no_matching_rule', 'invalid_path', 'policy_unavailable', 'custom_reason']) {
      const res = toCheckResponse(verdict({ allowed: code === 'allowed', code }), false);
      expect(res.status).toBeDefined();
      expect(typeof res.status.code).toBe('number');
      expect(res.status.code === 0).toBe(code === 'allowed');
    }
  });

  it('on allow forwards caller and rule upstream, overwriting client copies', () => {
    const res = toCheckResponse(verdict({ allowed: true, code: 'allowed', rule: 'r1', httpStatus: 200 }), false);
    expect(res.denied_response).toBeUndefined();
    expect(headers(res.ok_response!.headers)).toEqual({ 'x-infergate-caller': 'spiffe://td/ns/a/sa/b', 'x-infergate-rule': 'r1', 'x-infergate-quota': 'workload/spiffe://td/ns/a/sa/b' });
    expect(res.ok_response!.headers.every((h) => (h as { append: { value: boolean } }).append.value === false)).toBe(true);
    // No end user: a client's claim headers are stripped, never passed on.
    expect(res.ok_response!.headers_to_remove).toEqual(['x-infergate-dry-run', 'x-infergate-tenant', 'x-infergate-tier', 'x-infergate-subject']);
  });

  it("on allow for an end user forwards tenant, tier and subject, and keys the tenant's quota", () => {
    const input = { caller: { id: 'spiffe://td/ns/gw/sa/gw' }, end_user: { issuer: 'https://auth', tenant: 'acme', tier: 'premium', scopes: [] } } as never;
    const res = toCheckResponse(verdict({ allowed: true, code: 'allowed', rule: 'r1', input, subject: 'user-7' }), false);
    expect(headers(res.ok_response!.headers)).toMatchObject({ 'x-infergate-tenant': 'acme', 'x-infergate-tier': 'premium', 'x-infergate-subject': 'user-7', 'x-infergate-quota': 'tenant/premium/acme' });
    expect(res.dynamic_metadata.fields.tenant).toEqual({ stringValue: 'acme' });
  });

  it('removes a client-sent rule header when the allowing policy names no rule', () => {
    const res = toCheckResponse(verdict({ allowed: true, code: 'allowed', rule: null }), false);
    expect(res.ok_response!.headers_to_remove).toContain('x-infergate-rule');
  });

  it('on deny answers with the status, a JSON body and the reason header', () => {
    const res = toCheckResponse(verdict({ code: 'quarantined', rule: null }), false);
    expect(res.status.code).toBe(7);
    expect(res.denied_response!.status.code).toBe(403);
    expect(headers(res.denied_response!.headers)).toEqual({ 'x-infergate-reason': 'quarantined', 'content-type': 'application/json' });
    expect(JSON.parse(res.denied_response!.body)).toEqual({ code: 'quarantined', rule: null, decision_id: '00000000-0000-4000-8000-000000000000' });
  });

  it('puts decision id, caller, rule and cache use into dynamic metadata', () => {
    const res = toCheckResponse(verdict({ allowed: true, code: 'allowed', rule: 'r1', cacheHit: true }), false);
    expect(res.dynamic_metadata.fields).toMatchObject({
      decision_id: { stringValue: '00000000-0000-4000-8000-000000000000' },
      caller: { stringValue: 'spiffe://td/ns/a/sa/b' },
      rule: { stringValue: 'r1' },
      cache_hit: { boolValue: true },
      policy_revision: { stringValue: 'abc' },
    });
  });

  it('in dry-run mode allows a deny but marks it for the upstream and the metadata', () => {
    const res = toCheckResponse(verdict({ code: 'no_matching_rule' }), true);
    expect(res.status.code).toBe(0);
    expect(headers(res.ok_response!.headers)).toEqual({ 'x-infergate-caller': 'spiffe://td/ns/a/sa/b', 'x-infergate-dry-run': 'no_matching_rule', 'x-infergate-quota': 'workload/spiffe://td/ns/a/sa/b' });
    expect(res.ok_response!.headers_to_remove).toContain('x-infergate-rule');
    expect(res.dynamic_metadata.fields.dry_run_denied).toEqual({ boolValue: true });
  });

  it('in dry-run mode does not forward an unverified caller', () => {
    const res = toCheckResponse(verdict({ code: 'invalid_identity', caller: null }), true);
    expect(res.ok_response!.headers_to_remove).toContain('x-infergate-caller');
  });

  it('uses the policy status for a custom deny and maps server trouble to 5xx', () => {
    expect(toCheckResponse(verdict({ code: 'tenant_mismatch', httpStatus: 429 }), false).denied_response!.status.code).toBe(429);
    expect(outcomeFor('policy_unavailable')).toEqual({ grpc: 14, http: 503 });
    expect(outcomeFor('invalid_path')).toEqual({ grpc: 3, http: 403 });
    expect(outcomeFor('some_custom_code')).toEqual({ grpc: 7, http: 403 });
  });
});
