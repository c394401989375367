import type { HttpRequest } from './check-request.js';

/**
 * What joins a decision to Envoy's access log and to a trace: Envoy's
 * request id and the W3C trace context. Never part of the policy input (so
 * never part of the cache key); read only for the decision log and spans.
 */
export interface RequestContext {
  /** `x-request-id` (Envoy sets one on every request it accepts), or the CheckRequest's own id. */
  readonly requestId: string | null;
  readonly trace: TraceParent | null;
}

export interface TraceParent {
  /** 32 lower-case hex digits, not all zero. */
  readonly traceId: string;
  /** The caller's span: 16 lower-case hex digits, not all zero. */
  readonly spanId: string;
  readonly sampled: boolean;
}

/** Longer ids are not Envoy's (a UUID is 36) and are not copied into the log. */
const MAX_REQUEST_ID = 128;
const REQUEST_ID = /^[\x21-\x7e]+$/;
// version-traceid-parentid-flags; version ff is invalid, and a future version may append fields.
const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;

/** The traceparent header's trace context, or null when it is absent or malformed (per W3C Trace Context). */
export function parseTraceParent(value: string | undefined): TraceParent | null {
  if (value === undefined || value.length > 512) return null;
  const m = TRACEPARENT.exec(value.trim());
  if (m === null) return null;
  const [, version, traceId, spanId, flags, rest] = m as unknown as [string, string, string, string, string, string | undefined];
  if (version === 'ff' || (version === '00' && rest !== undefined)) return null;
  if (/^0+$/.test(traceId) || /^0+$/.test(spanId)) return null;
  return { traceId, spanId, sampled: (parseInt(flags, 16) & 1) === 1 };
}

function requestIdOf(http: HttpRequest): string | null {
  const id = http.headers?.['x-request-id'] ?? http.id;
  if (id === undefined || id.length === 0 || id.length > MAX_REQUEST_ID || !REQUEST_ID.test(id)) return null;
  return id;
}

/**
 * The request's context. `grpcTraceParent` is the traceparent of the Check
 * call itself (Envoy's own ext_authz span, when Envoy traces); it is the
 * closer parent, so it wins over the one in the HTTP request's headers.
 */
export function requestContext(http: HttpRequest | null | undefined, grpcTraceParent?: string): RequestContext {
  const fromCall = parseTraceParent(grpcTraceParent);
  if (!http) return { requestId: null, trace: fromCall };
  return { requestId: requestIdOf(http), trace: fromCall ?? parseTraceParent(http.headers?.traceparent) };
}
