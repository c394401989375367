import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Verdict } from '../../ext-authz/src/authorizer.js';
import { toCheckResponse, type CheckResponse } from '../../ext-authz/src/check-response.js';
import { checkResponseEncoder } from '../../ext-authz/src/check-response-encode.js';
import type { PolicyInput } from '../../ext-authz/src/policy-input.js';
import { encodeCheckResponse } from '../../ext-authz/src/protos.js';

const protobufjs = encodeCheckResponse() as (r: CheckResponse) => Buffer;

/** Any text a verdict can carry, multi-byte and long ones included. */
const text = fc.oneof(fc.string(), fc.string({ unit: 'grapheme', maxLength: 40 }), fc.string({ minLength: 120, maxLength: 400 }));
const maybe = <T>(a: fc.Arbitrary<T>) => fc.option(a, { nil: null });

const verdicts = fc.record({
  decisionId: fc.uuid(),
  allowed: fc.boolean(),
  code: fc.constantFrom('allowed', 'no_matching_rule', 'quarantined', 'invalid_path', 'token_expired', 'tier_forbids', 'internal_error'),
  rule: maybe(text),
  httpStatus: fc.constantFrom(200, 401, 403, 400, 429, 503),
  caller: maybe(text),
  input: maybe(fc.record({ tenant: maybe(text), tier: maybe(text) }).map((eu) => ({ end_user: eu }) as unknown as PolicyInput)),
  cacheHit: fc.boolean(),
  revision: maybe(fc.stringMatching(/^[0-9a-f]{12}$/)),
  detail: fc.constant(null),
  rawPath: fc.constant(null),
  subject: maybe(text),
}).map((v) => ({ ...v, code: v.allowed ? 'allowed' : v.code === 'allowed' ? 'no_matching_rule' : v.code }) as Verdict);

describe('the hand-written CheckResponse encoder', () => {
  it('writes exactly the bytes protobufjs writes, for every response toCheckResponse builds', () => {
    const encode = checkResponseEncoder(protobufjs);
    fc.assert(fc.property(verdicts, fc.boolean(), (v, dryRun) => {
      const r = toCheckResponse(v, dryRun);
      expect(encode(r).equals(protobufjs(r))).toBe(true);
    }), { numRuns: 2000 });
  });

  it('leaves a response larger than its scratch buffer to protobufjs', () => {
    let fellBack = 0;
    const encode = checkResponseEncoder((r) => (fellBack++, protobufjs(r)));
    const huge = toCheckResponse({ decisionId: 'x', allowed: true, code: 'allowed', rule: 'r'.repeat(20_000), httpStatus: 200, caller: null, input: null, cacheHit: false, revision: null, detail: null, rawPath: null, subject: null }, false);
    expect(encode(huge).equals(protobufjs(huge))).toBe(true);
    expect(fellBack).toBe(1);
  });

  it('returns bytes of its own: a later response does not change an earlier one', () => {
    const encode = checkResponseEncoder(protobufjs);
    const base = { decisionId: 'a', allowed: true, code: 'allowed', httpStatus: 200, caller: 'c', input: null, cacheHit: false, revision: null, detail: null, rawPath: null, subject: null };
    const first = encode(toCheckResponse({ ...base, rule: 'first' }, false));
    const copy = Buffer.from(first);
    encode(toCheckResponse({ ...base, rule: 'second-and-longer' }, false));
    expect(first.equals(copy)).toBe(true);
  });
});
