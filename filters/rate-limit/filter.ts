// rate-limit HTTP callbacks: one token per request from the caller's bucket,
// decided on request headers; the budget is echoed on the response.
import { HttpContext } from "../shared/context";
import { Name, getPropertyBytes, addHeaderU64, monotonicNanos, logWarn, HostBytes } from "../shared/host";
import { FilterMetrics } from "../shared/metrics";
import { reject, isGrpcRequest } from "../shared/reply";
import { requestHeader } from "../shared/request-headers";
import { Action, MapType, Status, GRPC_RESOURCE_EXHAUSTED } from "../shared/status";
import { RateConfig, IdentitySource } from "./config";
import { CallerRule, ruleForCaller, MAX_IDENTITY_BYTES } from "./logic";
import { BucketTable, Outcome } from "./store";

const LIMIT = new Name("x-ratelimit-limit");
const REMAINING = new Name("x-ratelimit-remaining");
const RESET = new Name("x-ratelimit-reset");
const PEER_URI_SAN = String.UTF8.encode(["connection", "uri_san_peer_certificate"].join("\0"));

// The caller's identity as the host handed it over (a header value borrowed
// from the request-header snapshot, or the SAN property), used in place:
// matched on bytes against the pre-encoded caller rules and copied into the
// bucket, never decoded into a string. One per VM.
const identity = new HostBytes();

export class RateLimitShared {
  /** Finished streams, reused by the next request: no allocation per stream. */
  readonly pool: RateLimitStream[] = [];
  constructor(readonly config: RateConfig, readonly table: BucketTable, readonly metrics: FilterMetrics, readonly identityHeader: Name) {}

  stream(id: u32): RateLimitStream {
    const pool = this.pool;
    if (pool.length == 0) return new RateLimitStream(id, this);
    const s = pool.pop();
    s.reuse(id);
    return s;
  }
}

export class RateLimitStream extends HttpContext {
  // The budget echoed on the allowed response (plain fields: nothing to allocate);
  // echo is set for an allowed request when the configuration has budgetHeaders.
  private echo: bool = false;
  private burst: u64 = 0;
  private remaining: u64 = 0;
  private reset: u64 = 0;

  constructor(id: u32, readonly shared: RateLimitShared) { super(id); }

  reuse(id: u32): void {
    this.id = id;
    this.echo = false;
  }

  onDone(): void {
    this.echo = false;
    this.shared.pool.push(this);
  }

  onRequestHeaders(headerCount: u32, endOfStream: bool): u32 {
    const action = this.decide();
    identity.release();
    return action;
  }

  private decide(): u32 {
    const cfg = this.shared.config;
    const metrics = this.shared.metrics;
    let limit = cfg.defaultLimit;
    let rule: CallerRule | null = null;
    if (!this.readCaller()) {
      if (!cfg.allowUnauthenticated) {
        metrics.rejected.inc();
        this.send(reject(403, "infergate_caller_unidentified", "{\"code\":\"caller_unidentified\"}", [], this.isGrpc(), 16 /* UNAUTHENTICATED */));
        return Action.PAUSE;
      }
      identity.release(); // anonymous: the empty identity
    } else {
      rule = ruleForCaller(cfg.callers, identity);
      if (rule !== null) limit = rule.limit;
    }
    const table = this.shared.table;
    // A caller named by an exact rule has a bucket of its own; everyone else competes for the shared slots.
    const outcome = rule !== null && rule.reserved >= 0
      ? table.takeReserved(rule.reserved, limit, monotonicNanos())
      : table.take(identity.ptr, identity.len, limit, cfg.defaultLimit, monotonicNanos());
    if (outcome != Outcome.Decided) {
      metrics.errors.inc();
      logWarn("rate-limit: shared data " + (outcome == Outcome.Contention ? "contention" : "error") +
        (cfg.failOpen ? "; failing open" : "; failing closed"));
      if (cfg.failOpen) return Action.CONTINUE;
      metrics.rejected.inc();
      this.send(reject(429, "infergate_rate_limit_unavailable", "{\"code\":\"rate_limit_unavailable\"}",
        ["retry-after", "1"], this.isGrpc(), GRPC_RESOURCE_EXHAUSTED));
      return Action.PAUSE;
    }
    const d = table.decision;
    const used = table.overflow ? cfg.defaultLimit : limit;
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
    this.echo = cfg.budgetHeaders;
    this.burst = used.burst;
    this.remaining = d.remaining;
    this.reset = d.reset;
    return Action.CONTINUE;
  }

  onResponseHeaders(headerCount: u32, endOfStream: bool): u32 {
    if (!this.echo) return Action.CONTINUE;
    addHeaderU64(MapType.HTTP_RESPONSE_HEADERS, LIMIT, this.burst);
    addHeaderU64(MapType.HTTP_RESPONSE_HEADERS, REMAINING, this.remaining);
    addHeaderU64(MapType.HTTP_RESPONSE_HEADERS, RESET, this.reset);
    return Action.CONTINUE;
  }

  /** Reads the verified caller into `identity`; false when there is none (or it is not plausibly an identity). */
  private readCaller(): bool {
    const cfg = this.shared.config;
    const found = cfg.identitySource == IdentitySource.Header
      ? requestHeader(this.shared.identityHeader, identity)
      : getPropertyBytes(PEER_URI_SAN, identity);
    return found && identity.len > 0 && identity.len <= MAX_IDENTITY_BYTES;
  }

  // Read only when rejecting (always inside onRequestHeaders, the only time
  // Envoy lets us read request headers).
  private isGrpc(): bool {
    return isGrpcRequest();
  }

  private send(status: u32): void {
    if (status != Status.OK) this.shared.metrics.errors.inc();
  }
}
