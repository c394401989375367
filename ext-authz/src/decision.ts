import { AuthzError, CUSTOM_REASON_PATTERN, REASONS } from './errors.js';

/** What a policy decided, validated. */
export interface PolicyDecision {
  readonly allowed: boolean;
  /** `allowed`, or a snake_case deny reason. */
  readonly code: string;
  readonly rule: string | null;
  /** HTTP status for a deny, when the policy chose one. */
  readonly httpStatus: number | null;
}

const RULE_NAME = /^[A-Za-z0-9._-]{1,128}$/;

/** Statuses Envoy's envoy.type.v3.StatusCode enum defines in the 4xx/5xx range (it rejects others). */
const DENY_STATUSES = new Set([
  400, 401, 402, 403, 404, 405, 406, 407, 408, 409, 410, 411, 412, 413, 414, 415, 416, 417, 421, 422, 423, 424, 426,
  428, 429, 431, 500, 501, 502, 503, 504, 505, 506, 507, 508, 510, 511,
]);

function bad(why: string): AuthzError {
  return new AuthzError(REASONS.policy_error, `policy decision ${why}`);
}

/**
 * Validates a policy's raw result. The contract is an object
 * `{allowed: boolean, code?: string, rule?: string|null, http_status?: number}`;
 * anything else is a policy bug and denies with `policy_error`, never allows.
 */
export function toDecision(raw: unknown): PolicyDecision {
  if (raw === undefined) throw bad('is undefined (no rule produced a value)');
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw bad(`must be an object, got ${Array.isArray(raw) ? 'array' : typeof raw}`);
  const d = raw as Record<string, unknown>;
  if (typeof d.allowed !== 'boolean') throw bad(`field "allowed" must be a boolean, got ${typeof d.allowed}`);
  let code: string;
  if (d.code === undefined) code = d.allowed ? REASONS.allowed : REASONS.no_matching_rule;
  else if (typeof d.code === 'string' && CUSTOM_REASON_PATTERN.test(d.code)) code = d.code;
  else throw bad('field "code" must be a snake_case string');
  if (d.allowed && code !== REASONS.allowed) throw bad(`allows with code "${code}"`);
  if (!d.allowed && code === REASONS.allowed) throw bad('denies with code "allowed"');
  let rule: string | null = null;
  if (d.rule !== undefined && d.rule !== null) {
    if (typeof d.rule !== 'string' || !RULE_NAME.test(d.rule)) throw bad('field "rule" must be a rule name or null');
    rule = d.rule;
  }
  let httpStatus: number | null = null;
  if (d.http_status !== undefined) {
    const s = d.http_status;
    if (typeof s !== 'number' || !DENY_STATUSES.has(s)) throw bad('field "http_status" must be a 4xx or 5xx status Envoy defines');
    if (d.allowed) throw bad('sets "http_status" on an allow');
    httpStatus = s;
  }
  return { allowed: d.allowed, code, rule, httpStatus };
}
