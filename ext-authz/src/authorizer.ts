import { randomUUID } from 'node:crypto';
import { cacheKey, serialiseInput } from './cache-key.js';
import type { CheckRequest } from './check-request.js';
import type { DecisionCache } from './decision-cache.js';
import { toDecision, type PolicyDecision } from './decision.js';
import { AuthzError, REASONS, errorMessage, outcomeFor } from './errors.js';
import { isDelegate, type EndUsers } from './end-users/end-users.js';
import { bearerToken } from './end-users/bearer-token.js';
import type { VerifiedToken } from './end-users/end-user.js';
import type { PolicyEngine } from './policy-engine.js';
import { STRICT_PATHS, type PathOptions } from './path.js';
import { toPolicyInput, type InputOptions, type PolicyInput } from './policy-input.js';

/** The policy in force: swapped as one reference on reload. */
export interface ActivePolicy {
  readonly engine: PolicyEngine;
  /** Short content hash of bundle + manifest; part of every cache key. */
  readonly revision: string;
  /** How this policy's manifest says request paths are read. */
  readonly paths: PathOptions;
  /** End-user token verification, when the manifest has an endUsers section. */
  readonly endUsers: EndUsers | null;
}

/** Everything known about one check, for the response, metrics and the decision log. */
export interface Verdict {
  readonly decisionId: string;
  readonly allowed: boolean;
  readonly code: string;
  readonly rule: string | null;
  readonly httpStatus: number;
  /** The verified caller, when the identity was valid. */
  readonly caller: string | null;
  readonly input: PolicyInput | null;
  readonly cacheHit: boolean;
  readonly revision: string | null;
  /** Why a request was refused before or instead of policy evaluation. */
  readonly detail: string | null;
  /** The request's path as Envoy sent it, when it was refused before a policy input existed. */
  readonly rawPath: string | null;
  /** The verified end user's subject (the rest of the projection is in input.end_user). */
  readonly subject: string | null;
  /** The policy's answer this verdict rests on (the decision cache's own object), when one was consulted. */
  readonly decision?: PolicyDecision;
}

/** Enough of a refused path for an investigator, not enough to flood the log. */
const MAX_LOGGED_PATH = 1024;

export function denyVerdict(err: AuthzError, input: PolicyInput | null, revision: string | null, rawPath: string | null = null): Verdict {
  return {
    decisionId: randomUUID(),
    allowed: false,
    code: err.code,
    rule: null,
    httpStatus: outcomeFor(err.code).http,
    caller: input?.caller.id ?? err.caller,
    input,
    cacheHit: false,
    revision,
    detail: err.message,
    rawPath: rawPath !== null && rawPath.length > MAX_LOGGED_PATH ? rawPath.slice(0, MAX_LOGGED_PATH) : rawPath,
    subject: null,
  };
}

/** The decision's result as metrics and the decision log name it. */
export function resultOf(v: Verdict, dryRun: boolean): 'allow' | 'deny' | 'dry_run_deny' {
  return v.allowed ? 'allow' : dryRun ? 'dry_run_deny' : 'deny';
}

/**
 * CheckRequest → policy input → cache → evaluate → decision. No gRPC, no
 * logging: the server wraps this, the tests call it directly.
 */
export class Authorizer {
  constructor(
    private readonly current: () => ActivePolicy | null,
    private readonly cache: DecisionCache<PolicyDecision>,
    private readonly inputOptions: InputOptions,
  ) {}

  /**
   * Synchronous unless the request carries an end-user token that is not in
   * the verified-token cache: verifying a signature is asynchronous.
   */
  check(req: CheckRequest): Verdict | Promise<Verdict> {
    // Read once: a reload during this check must not mix revisions (the path
    // rules and the token issuers come from the same manifest as the policy).
    const policy = this.current();
    let input: PolicyInput;
    try {
      input = toPolicyInput(req, this.inputOptions, policy?.paths ?? STRICT_PATHS);
    } catch (err) {
      const e = err instanceof AuthzError ? err : new AuthzError(REASONS.invalid_request, errorMessage(err));
      const rawPath = req?.attributes?.request?.http?.path;
      return denyVerdict(e, null, null, typeof rawPath === 'string' ? rawPath : null);
    }
    if (policy === null) return denyVerdict(new AuthzError(REASONS.policy_unavailable, 'no policy loaded'), input, null);
    const endUsers = policy.endUsers;
    const http = req.attributes?.request?.http;
    if (endUsers === null || !http) return this.decide(policy, input, null);
    let token: string | null;
    try {
      token = bearerToken(http, endUsers.config.token_header);
    } catch (err) {
      return denyVerdict(err as AuthzError, input, policy.revision);
    }
    if (token === null) return this.decide(policy, input, null);
    // Only the workloads the manifest names may act for end users; checked before any crypto.
    if (!isDelegate(endUsers.config.delegates, input.caller.id)) {
      return denyVerdict(new AuthzError(REASONS.not_delegated, 'an end-user token from a workload that is not a delegate in endUsers.delegates'), input, policy.revision);
    }
    const known = endUsers.verifier.cached(token);
    if (known !== undefined) return this.decide(policy, input, known);
    return endUsers.verifier.verify(token).then(
      (verified) => this.decide(policy, input, verified),
      (err: unknown) => denyVerdict(err instanceof AuthzError ? err : new AuthzError(REASONS.invalid_token, errorMessage(err)), input, policy.revision),
    );
  }

  private decide(policy: ActivePolicy, input: PolicyInput, token: VerifiedToken | null): Verdict {
    if (token !== null) input.end_user = token.endUser;
    const json = serialiseInput(input);
    let decision: PolicyDecision;
    let hit: boolean;
    try {
      // A decision that rests on a token never outlives it.
      const ttlCapMs = token !== null ? token.expiresAtMs - Date.now() : undefined;
      ({ value: decision, hit } = this.cache.getOrCompute(cacheKey(json, policy.revision), () => toDecision(policy.engine.evaluate(json)), ttlCapMs));
    } catch (err) {
      const e = err instanceof AuthzError ? err : new AuthzError(REASONS.policy_error, `policy evaluation failed: ${errorMessage(err)}`);
      return denyVerdict(e, input, policy.revision);
    }
    return {
      decisionId: randomUUID(),
      allowed: decision.allowed,
      code: decision.code,
      rule: decision.rule,
      httpStatus: decision.allowed ? 200 : (decision.httpStatus ?? outcomeFor(decision.code).http),
      caller: input.caller.id,
      input,
      cacheHit: hit,
      revision: policy.revision,
      detail: null,
      rawPath: null,
      subject: token?.subject ?? null,
      decision,
    };
  }
}
