import { ROOT_CONTEXT, SpanKind, SpanStatusCode, TraceFlags, trace, type Span, type Tracer } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BatchSpanProcessor, ParentBasedSampler, TraceIdRatioBasedSampler, TracerProvider } from '@opentelemetry/sdk-trace';
import type { Verdict } from './authorizer.js';
import { REASONS } from './errors.js';
import type { RequestContext } from './request-context.js';

export interface TracingOptions {
  /** OTLP/HTTP traces endpoint, e.g. http://otel-collector:4318/v1/traces. */
  readonly endpoint: string;
  /** Share of checks without a sampled parent that start a trace of their own (0 to 1). */
  readonly ratio: number;
}

/**
 * One span per check, `infergate.check`, child of the caller's span (from
 * the traceparent Envoy passes on) and carrying the decision. Off unless an
 * OTLP endpoint is given: the handler then never calls in here, so tracing
 * off costs nothing. A parent's sampling decision is followed, so only
 * traces the mesh already samples are exported, plus `ratio` of the rest.
 */
export class CheckTracing {
  private constructor(
    private readonly provider: TracerProvider,
    private readonly tracer: Tracer,
  ) {}

  static start(o: TracingOptions): CheckTracing {
    const provider = new TracerProvider({
      resource: resourceFromAttributes({ 'service.name': 'infergate-authz' }),
      sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(o.ratio) }),
      spanProcessors: [new BatchSpanProcessor({ exporter: new OTLPTraceExporter({ url: o.endpoint }) })],
    });
    return new CheckTracing(provider, provider.getTracer('infergate-authz'));
  }

  /** Starts the check's span at `startMs` (epoch milliseconds, when the check was read). */
  begin(ctx: RequestContext, startMs: number): Span {
    const t = ctx.trace;
    const parent = t === null
      ? ROOT_CONTEXT
      : trace.setSpanContext(ROOT_CONTEXT, { traceId: t.traceId, spanId: t.spanId, traceFlags: t.sampled ? TraceFlags.SAMPLED : TraceFlags.NONE, isRemote: true });
    return this.tracer.startSpan('infergate.check', { kind: SpanKind.SERVER, startTime: startMs }, parent);
  }

  /** Records the decision on the span and ends it. */
  end(span: Span, v: Verdict, requestId: string | null): void {
    if (span.isRecording()) {
      span.setAttributes({
        'infergate.decision_id': v.decisionId,
        'infergate.allowed': v.allowed,
        'infergate.reason': v.code,
        'infergate.cache_hit': v.cacheHit,
        ...(v.rule !== null ? { 'infergate.rule': v.rule } : {}),
        ...(v.caller !== null ? { 'infergate.caller': v.caller } : {}),
        ...(v.revision !== null ? { 'infergate.policy_revision': v.revision } : {}),
        ...(requestId !== null ? { 'http.request.header.x-request-id': requestId } : {}),
      });
      // A deny is the server doing its job; only its own failures are errors.
      if (v.code === REASONS.internal_error || v.code === REASONS.policy_error || v.code === REASONS.policy_unavailable) {
        span.setStatus({ code: SpanStatusCode.ERROR, message: v.detail ?? v.code });
      }
    }
    span.end();
  }

  /** Exports what is buffered and stops. */
  shutdown(): Promise<void> {
    return this.provider.shutdown();
  }
}
