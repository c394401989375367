import { describe, expect, it } from 'vitest';
import { parseTraceParent, requestContext } from '../../ext-authz/src/request-context.js';

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const SPAN = '00f067aa0ba902b7';

describe('W3C traceparent', () => {
  it('reads trace id, caller span id and the sampled flag', () => {
    expect(parseTraceParent(`00-${TRACE}-${SPAN}-01`)).toEqual({ traceId: TRACE, spanId: SPAN, sampled: true });
    expect(parseTraceParent(`00-${TRACE}-${SPAN}-00`)).toEqual({ traceId: TRACE, spanId: SPAN, sampled: false });
  });

  it('accepts a future version with more fields, as the spec asks', () => {
    expect(parseTraceParent(`01-${TRACE}-${SPAN}-01-extra`)).toMatchObject({ traceId: TRACE });
  });

  it.each([
    ['absent', undefined],
    ['version ff', `ff-${TRACE}-${SPAN}-01`],
    ['version 00 with extra fields', `00-${TRACE}-${SPAN}-01-extra`],
    ['an all-zero trace id', `00-${'0'.repeat(32)}-${SPAN}-01`],
    ['an all-zero span id', `00-${TRACE}-${'0'.repeat(16)}-01`],
    ['upper-case hex', `00-${TRACE.toUpperCase()}-${SPAN}-01`],
    ['a short trace id', `00-${TRACE.slice(1)}-${SPAN}-01`],
    ['garbage', 'not a traceparent'],
  ])('ignores %s', (_what, value) => {
    expect(parseTraceParent(value)).toBeNull();
  });
});

describe('request context', () => {
  const http = (headers: Record<string, string>, id?: string) => ({ method: 'GET', path: '/', headers, ...(id ? { id } : {}) });

  it("takes Envoy's x-request-id and the request's trace context", () => {
    expect(requestContext(http({ 'x-request-id': 'abc-123', traceparent: `00-${TRACE}-${SPAN}-01` }))).toEqual({
      requestId: 'abc-123',
      trace: { traceId: TRACE, spanId: SPAN, sampled: true },
    });
  });

  it("prefers the Check call's own traceparent (Envoy's ext_authz span) as the closer parent", () => {
    const callSpan = 'aaaaaaaaaaaaaaaa';
    expect(requestContext(http({ traceparent: `00-${TRACE}-${SPAN}-01` }), `00-${TRACE}-${callSpan}-01`).trace?.spanId).toBe(callSpan);
  });

  it('falls back to the CheckRequest id, and drops ids that are no request id', () => {
    expect(requestContext(http({}, 'stream-7')).requestId).toBe('stream-7');
    expect(requestContext(http({ 'x-request-id': 'a'.repeat(129) })).requestId).toBeNull();
    expect(requestContext(http({ 'x-request-id': 'has space' })).requestId).toBeNull();
    expect(requestContext(null)).toEqual({ requestId: null, trace: null });
  });
});
