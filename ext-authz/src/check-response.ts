import type { Verdict } from './authorizer.js';
import { GRPC, outcomeFor } from './errors.js';

/** Header names, built once. */
export const HEADER = {
  caller: 'x-infergate-caller',
  rule: 'x-infergate-rule',
  reason: 'x-infergate-reason',
  dryRun: 'x-infergate-dry-run',
  tenant: 'x-infergate-tenant',
  tier: 'x-infergate-tier',
  subject: 'x-infergate-subject',
  quota: 'x-infergate-quota',
  contentType: 'content-type',
} as const;

/**
 * The identity the guard filter's rate limit keys on (`identity:
 * header:x-infergate-quota`): a tenant's requests share one budget whichever
 * workload makes them, and workload traffic is budgeted per workload.
 */
export function quotaKey(v: Verdict): string | null {
  const eu = v.input?.end_user;
  if (eu && eu.tenant !== null) return `tenant/${eu.tier ?? '-'}/${eu.tenant}`;
  return v.caller !== null ? `workload/${v.caller}` : null;
}

// google.protobuf.Value as protobufjs defines it: camelCase field names even with keepCase.
type StructValue = { stringValue: string } | { boolValue: boolean } | { nullValue: 0 };

interface HeaderValueOption {
  header: { key: string; value: string };
  /** Explicitly false: overwrite any copy the client sent instead of appending to it. */
  append: { value: false };
}

/** envoy.service.auth.v3.CheckResponse as @grpc/proto-loader encodes it (keepCase). */
export interface CheckResponse {
  status: { code: number; message: string };
  ok_response?: { headers: HeaderValueOption[]; headers_to_remove: string[] };
  denied_response?: { status: { code: number }; headers: HeaderValueOption[]; body: string };
  dynamic_metadata: { fields: Record<string, StructValue> };
}

function set(key: string, value: string): HeaderValueOption {
  return { header: { key, value }, append: { value: false } };
}

function setOrRemove(headers: HeaderValueOption[], remove: string[], key: string, value: string | null): void {
  if (value !== null) headers.push(set(key, value));
  else remove.push(key);
}

function str(v: string | null): StructValue {
  return v === null ? { nullValue: 0 } : { stringValue: v };
}

function metadata(v: Verdict, dryRunDenied: boolean, decisionId: boolean): CheckResponse['dynamic_metadata'] {
  const fields: Record<string, StructValue> = {};
  // Left out only by EncodedAllows, which adds each check's own id to bytes it encoded once.
  if (decisionId) fields.decision_id = { stringValue: v.decisionId };
  fields.caller = str(v.caller);
  fields.rule = str(v.rule);
  fields.reason = { stringValue: v.code };
  fields.cache_hit = { boolValue: v.cacheHit };
  if (v.revision !== null) fields.policy_revision = { stringValue: v.revision };
  const eu = v.input?.end_user;
  if (eu) {
    fields.tenant = str(eu.tenant);
    fields.tier = str(eu.tier);
  }
  if (dryRunDenied) fields.dry_run_denied = { boolValue: true };
  return { fields };
}

/**
 * Verdict → CheckResponse. The status is always set explicitly: Envoy reads
 * an unset status as OK, i.e. allow. On allow the verified caller and rule
 * are forwarded upstream, overwriting whatever the client sent under those
 * names; headers that are not set are removed so a client can never smuggle
 * them through.
 */
export function toCheckResponse(v: Verdict, dryRun: boolean, decisionId = true): CheckResponse {
  if (v.allowed || dryRun) {
    const headers: HeaderValueOption[] = [];
    const remove: string[] = [];
    if (v.caller !== null) headers.push(set(HEADER.caller, v.caller));
    else remove.push(HEADER.caller);
    if (v.allowed && v.rule !== null) headers.push(set(HEADER.rule, v.rule));
    else remove.push(HEADER.rule);
    if (!v.allowed) headers.push(set(HEADER.dryRun, v.code));
    else remove.push(HEADER.dryRun);
    // What the upstream and the filters may trust about the end user; a client's copies never pass.
    const eu = v.input?.end_user ?? null;
    setOrRemove(headers, remove, HEADER.tenant, eu?.tenant ?? null);
    setOrRemove(headers, remove, HEADER.tier, eu?.tier ?? null);
    setOrRemove(headers, remove, HEADER.subject, eu !== null ? v.subject : null);
    setOrRemove(headers, remove, HEADER.quota, quotaKey(v));
    return {
      status: { code: GRPC.OK, message: '' },
      ok_response: { headers, headers_to_remove: remove },
      dynamic_metadata: metadata(v, !v.allowed, decisionId),
    };
  }
  const body = JSON.stringify({ code: v.code, rule: v.rule, decision_id: v.decisionId });
  // A deny must never carry OK, whatever code a custom policy chose.
  const grpc = outcomeFor(v.code).grpc;
  return {
    status: { code: grpc === GRPC.OK ? GRPC.PERMISSION_DENIED : grpc, message: v.code },
    denied_response: {
      status: { code: v.httpStatus },
      headers: [set(HEADER.reason, v.code), set(HEADER.contentType, 'application/json')],
      body,
    },
    dynamic_metadata: metadata(v, false, decisionId),
  };
}
