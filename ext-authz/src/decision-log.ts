import pino, { type Logger } from 'pino';
import { resultOf, type Verdict } from './authorizer.js';
import type { RequestContext } from './request-context.js';

export type DecisionLogTarget = 'stdout' | 'stderr' | 'off' | string;

/** An asynchronous writer (sonic-boom, as pino.destination makes it). */
export type DecisionLogDestination = ReturnType<typeof pino.destination>;

/**
 * The decision log: one JSON line per check. It is its own pino instance,
 * separate from the operational log, so `--log-level warn` does not silence
 * the audit trail; `--decision-log off` does.
 */
export function createDecisionLogger(target: DecisionLogTarget): Logger | null {
  const dest = decisionLogDestination(target);
  return dest === null ? null : pino(DECISION_LOG_OPTIONS, dest);
}

const DECISION_LOG_OPTIONS = { base: null, messageKey: 'msg', timestamp: pino.stdTimeFunctions.isoTime } as const;

/** Where decision lines go: stdout, stderr or a file (appended to, created with its directory); null for off. */
export function decisionLogDestination(target: DecisionLogTarget): DecisionLogDestination | null {
  if (target === 'off') return null;
  return target === 'stdout' ? pino.destination({ dest: 1, sync: false }) :
    target === 'stderr' ? pino.destination({ dest: 2, sync: false }) :
    pino.destination({ dest: target, sync: false, mkdir: true });
}

/**
 * A worker's decision log (--workers above 1): the same lines, with the
 * worker's slot, handed whole to `write` (which relays them to the primary,
 * the only process that writes the log, so lines from several workers can
 * neither interleave nor tear).
 */
export function createWorkerDecisionLogger(worker: number, write: (line: string) => void): Logger {
  return pino({ ...DECISION_LOG_OPTIONS, base: { worker } }, { write });
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
