import pino, { type Logger } from 'pino';
import { resultOf, type Verdict } from './authorizer.js';
import type { RequestContext } from './request-context.js';

export type DecisionLogTarget = 'stdout' | 'stderr' | 'off' | string;

/**
 * The decision log: one JSON line per check. It is its own pino instance,
 * separate from the operational log, so `--log-level warn` does not silence
 * the audit trail; `--decision-log off` does.
 */
export function createDecisionLogger(target: DecisionLogTarget): Logger | null {
  if (target === 'off') return null;
  const dest =
    target === 'stdout' ? pino.destination({ dest: 1, sync: false }) :
    target === 'stderr' ? pino.destination({ dest: 2, sync: false }) :
    pino.destination({ dest: target, sync: false, mkdir: true });
  return pino({ base: null, messageKey: 'msg', timestamp: pino.stdTimeFunctions.isoTime }, dest);
}

/** `ctx` joins the line to Envoy's access log (request_id) and to a trace (trace_id, span_id of the caller's span). */
export function logDecision(log: Logger, v: Verdict, dryRun: boolean, latencyUs: number, ctx: RequestContext): void {
  log.info({
    decision_id: v.decisionId,
    request_id: ctx.requestId,
    trace_id: ctx.trace?.traceId ?? null,
    span_id: ctx.trace?.spanId ?? null,
    caller: v.caller,
    kind: v.input?.kind ?? null,
    host: v.input?.host ?? null,
    method: v.input?.method ?? null,
    path: v.input?.path ?? null,
    // Only refusals before a policy input existed carry it; pino leaves out undefined fields.
    raw_path: v.rawPath ?? undefined,
    result: resultOf(v, dryRun),
    reason: v.code,
    rule: v.rule,
    policy_revision: v.revision,
    cache_hit: v.cacheHit,
    latency_us: latencyUs,
    detail: v.detail,
  }, 'decision');
}
