/**
 * One error type with stable snake_case codes. The same code is the deny
 * reason sent to the client (`x-infergate-reason`), the `reason` label on
 * metrics and the `reason` field of the decision log, so it must never be
 * renamed once shipped.
 */

/** Codes the server itself produces; a custom policy may add its own. */
export const REASONS = {
  allowed: 'allowed',
  no_identity: 'no_identity',
  invalid_identity: 'invalid_identity',
  foreign_trust_domain: 'foreign_trust_domain',
  quarantined: 'quarantined',
  denied_by_rule: 'denied_by_rule',
  no_matching_rule: 'no_matching_rule',
  invalid_path: 'invalid_path',
  invalid_host: 'invalid_host',
  invalid_request: 'invalid_request',
  no_token: 'no_token',
  invalid_token: 'invalid_token',
  token_expired: 'token_expired',
  not_delegated: 'not_delegated',
  tier_forbids: 'tier_forbids',
  policy_error: 'policy_error',
  policy_unavailable: 'policy_unavailable',
  internal_error: 'internal_error',
} as const;

export type ReasonCode = (typeof REASONS)[keyof typeof REASONS];

/** A reason a custom policy may return; checked so it is safe as a header value and metrics label. */
export const CUSTOM_REASON_PATTERN = /^[a-z][a-z0-9_]{0,62}$/;

export class AuthzError extends Error {
  readonly code: ReasonCode;
  /** The verified caller, when the request was refused after its identity checked out (a bad path, say). */
  caller: string | null = null;

  constructor(code: ReasonCode, message: string) {
    super(message);
    this.name = 'AuthzError';
    this.code = code;
  }
}

/** gRPC status codes used in CheckResponse.status (google.rpc.Code). */
export const GRPC = { OK: 0, INVALID_ARGUMENT: 3, PERMISSION_DENIED: 7, UNAVAILABLE: 14, UNAUTHENTICATED: 16 } as const;

interface Outcome {
  grpc: number;
  http: number;
}

/**
 * The one table mapping outcomes to gRPC and HTTP status. Every deny is a
 * non-OK status (an unset status would read as OK, i.e. allow, to Envoy).
 * Every refusal a client causes is HTTP 403, so a prober learns nothing from
 * the status beyond "no"; the reason header says which check failed, and the
 * gRPC code (INVALID_ARGUMENT vs PERMISSION_DENIED) tells malformed from
 * forbidden in Envoy's stats. The exceptions: an end-user token that is
 * missing where a rule needs one, bad or expired is 401 (UNAUTHENTICATED),
 * because that is what token clients act on (refresh and retry), and
 * server-side trouble: no policy loaded is 503, a bug is 500.
 */
const OUTCOMES: Record<ReasonCode, Outcome> = {
  allowed: { grpc: GRPC.OK, http: 200 },
  no_identity: { grpc: GRPC.PERMISSION_DENIED, http: 403 },
  invalid_identity: { grpc: GRPC.PERMISSION_DENIED, http: 403 },
  foreign_trust_domain: { grpc: GRPC.PERMISSION_DENIED, http: 403 },
  quarantined: { grpc: GRPC.PERMISSION_DENIED, http: 403 },
  denied_by_rule: { grpc: GRPC.PERMISSION_DENIED, http: 403 },
  no_matching_rule: { grpc: GRPC.PERMISSION_DENIED, http: 403 },
  invalid_path: { grpc: GRPC.INVALID_ARGUMENT, http: 403 },
  invalid_host: { grpc: GRPC.INVALID_ARGUMENT, http: 403 },
  invalid_request: { grpc: GRPC.INVALID_ARGUMENT, http: 403 },
  no_token: { grpc: GRPC.UNAUTHENTICATED, http: 401 },
  invalid_token: { grpc: GRPC.UNAUTHENTICATED, http: 401 },
  token_expired: { grpc: GRPC.UNAUTHENTICATED, http: 401 },
  not_delegated: { grpc: GRPC.PERMISSION_DENIED, http: 403 },
  tier_forbids: { grpc: GRPC.PERMISSION_DENIED, http: 403 },
  policy_error: { grpc: GRPC.PERMISSION_DENIED, http: 403 },
  policy_unavailable: { grpc: GRPC.UNAVAILABLE, http: 503 },
  internal_error: { grpc: GRPC.PERMISSION_DENIED, http: 500 },
};

const CUSTOM_DENY: Outcome = { grpc: GRPC.PERMISSION_DENIED, http: 403 };

export function outcomeFor(code: string): Outcome {
  return (OUTCOMES as Record<string, Outcome>)[code] ?? CUSTOM_DENY;
}

/** Narrow an unknown thrown value to a message without assuming it is an Error. */
export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
