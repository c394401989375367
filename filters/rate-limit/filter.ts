// rate-limit HTTP callbacks: one token per request from the caller's bucket,
// decided on request headers; the budget is echoed on the response.
import { HttpContext } from "../shared/context";
import { Name, getHeader, getPropertyString, addHeader, monotonicNanos, logWarn } from "../shared/host";
import { FilterMetrics } from "../shared/metrics";
import { reject, isGrpcContentType } from "../shared/reply";
import { Action, MapType, Status, GRPC_RESOURCE_EXHAUSTED } from "../shared/status";
import { RateConfig, IdentitySource } from "./config";
import { Decision, Limit, limitForCaller } from "./logic";
import { BucketTable, Outcome } from "./store";

const CONTENT_TYPE = new Name("content-type");
const LIMIT = new Name("x-ratelimit-limit");
const REMAINING = new Name("x-ratelimit-remaining");
const RESET = new Name("x-ratelimit-reset");
const PEER_URI_SAN = String.UTF8.encode(["connection", "uri_san_peer_certificate"].join("\0"));
// SPIFFE caps IDs at 2048 bytes; anything longer is not an identity.
const MAX_IDENTITY_BYTES = 2048;
const ANONYMOUS = String.UTF8.encode("");

export class RateLimitShared {
  constructor(readonly config: RateConfig, readonly table: BucketTable, readonly metrics: FilterMetrics, readonly identityHeader: Name) {}
}

export class RateLimitStream extends HttpContext {
  private budget: Decision | null = null;
  private limit: Limit | null = null;

  constructor(id: u32, readonly shared: RateLimitShared) { super(id); }

  onRequestHeaders(headerCount: u32, endOfStream: bool): u32 {
    const cfg = this.shared.config;
    const metrics = this.shared.metrics;
    const caller = this.caller();
    let identity = ANONYMOUS;
    let limit = cfg.defaultLimit;
    if (caller === null) {
      if (!cfg.allowUnauthenticated) {
        metrics.rejected.inc();
        this.send(reject(403, "infergate_caller_unidentified", "{\"code\":\"caller_unidentified\"}", [], this.isGrpc(), 16 /* UNAUTHENTICATED */));
        return Action.PAUSE;
      }
    } else {
      identity = String.UTF8.encode(caller);
      limit = limitForCaller(cfg.callers, cfg.defaultLimit, caller);
    }
    const result = this.shared.table.take(identity, limit, cfg.defaultLimit, monotonicNanos());
    const d = result.decision;
    if (result.outcome != Outcome.Decided || d === null) {
      metrics.errors.inc();
      logWarn("rate-limit: shared data " + (result.outcome == Outcome.Contention ? "contention" : "error") +
        (cfg.failOpen ? "; failing open" : "; failing closed"));
      if (cfg.failOpen) return Action.CONTINUE;
      metrics.rejected.inc();
      this.send(reject(429, "infergate_rate_limit_unavailable", "{\"code\":\"rate_limit_unavailable\"}",
        ["retry-after", "1"], this.isGrpc(), GRPC_RESOURCE_EXHAUSTED));
      return Action.PAUSE;
    }
    const used = result.overflow ? cfg.defaultLimit : limit;
    if (!d.allowed) {
      metrics.rejected.inc();
      this.send(reject(429, "infergate_rate_limited", "{\"code\":\"rate_limited\",\"retryAfter\":" + d.retryAfter.toString() + "}", [
        "retry-after", d.retryAfter.toString(),
        "x-ratelimit-limit", used.burst.toString(),
        "x-ratelimit-remaining", "0",
        "x-ratelimit-reset", d.reset.toString(),
      ], this.isGrpc(), GRPC_RESOURCE_EXHAUSTED));
      return Action.PAUSE;
    }
    metrics.allowed.inc();
    this.budget = d;
    this.limit = used;
    return Action.CONTINUE;
  }

  onResponseHeaders(headerCount: u32, endOfStream: bool): u32 {
    const d = this.budget;
    const limit = this.limit;
    if (d === null || limit === null) return Action.CONTINUE;
    addHeader(MapType.HTTP_RESPONSE_HEADERS, LIMIT, limit.burst.toString());
    addHeader(MapType.HTTP_RESPONSE_HEADERS, REMAINING, d.remaining.toString());
    addHeader(MapType.HTTP_RESPONSE_HEADERS, RESET, d.reset.toString());
    return Action.CONTINUE;
  }

  /** The verified caller, or null when there is none (or it is not plausibly an identity). */
  private caller(): string | null {
    const cfg = this.shared.config;
    const v = cfg.identitySource == IdentitySource.Header
      ? getHeader(MapType.HTTP_REQUEST_HEADERS, this.shared.identityHeader)
      : getPropertyString(PEER_URI_SAN);
    if (v === null || v.length == 0 || v.length > MAX_IDENTITY_BYTES) return null;
    return v;
  }

  // Read only when rejecting (always inside onRequestHeaders, the only time
  // Envoy lets us read request headers): one host call fewer per allowed request.
  private isGrpc(): bool {
    return isGrpcContentType(getHeader(MapType.HTTP_REQUEST_HEADERS, CONTENT_TYPE));
  }

  private send(status: u32): void {
    if (status != Status.OK) this.shared.metrics.errors.inc();
  }
}

