// guard HTTP callbacks: the rate-limit check, then the payload-limit check, in
// one stream context. Each check is the separate filter's own stream class;
// this only sequences them, in the order the two filters would run in a chain.
import { HttpContext } from "../shared/context";
import { Action } from "../shared/status";
import { FilterMetrics } from "../shared/metrics";
import { PayloadConfig } from "../payload-limit/config";
import { PayloadLimitStream } from "../payload-limit/filter";
import { RateLimitShared, RateLimitStream } from "../rate-limit/filter";

export class GuardShared {
  /** Finished streams, reused by the next request: no allocation per stream. */
  readonly pool: GuardStream[] = [];
  constructor(readonly rate: RateLimitShared | null, readonly payload: PayloadConfig | null, readonly payloadMetrics: FilterMetrics | null) {}

  stream(id: u32): GuardStream {
    const pool = this.pool;
    const s = pool.length > 0 ? pool.pop() : new GuardStream(this, this.newPayloadStream(id));
    s.start(id);
    return s;
  }

  private newPayloadStream(id: u32): PayloadLimitStream | null {
    const cfg = this.payload;
    const metrics = this.payloadMetrics;
    return cfg !== null && metrics !== null ? new PayloadLimitStream(id, cfg, metrics) : null;
  }
}

export class GuardStream extends HttpContext {
  private rate: RateLimitStream | null = null;
  // The payload check ran (false when rate-limit answered first): only then
  // does it see the rest of the stream and count the request.
  private payloadActive: bool = false;

  constructor(readonly shared: GuardShared, readonly payload: PayloadLimitStream | null) { super(0); }

  start(id: u32): void {
    this.id = id;
    const rate = this.shared.rate;
    this.rate = rate !== null ? rate.stream(id) : null;
    const payload = this.payload;
    if (payload !== null) payload.reuse(id);
    this.payloadActive = false;
  }

  onRequestHeaders(headerCount: u32, endOfStream: bool): u32 {
    const rate = this.rate;
    if (rate !== null) {
      const action = rate.onRequestHeaders(headerCount, endOfStream);
      if (action != Action.CONTINUE) return action;
    }
    const payload = this.payload;
    if (payload === null) return Action.CONTINUE;
    this.payloadActive = true;
    return payload.onRequestHeaders(headerCount, endOfStream);
  }

  onRequestBody(bodySize: u32, endOfStream: bool): u32 {
    const payload = this.payload;
    if (payload === null || !this.payloadActive) return Action.CONTINUE;
    return payload.onRequestBody(bodySize, endOfStream);
  }

  // Responses pass the payload check first (the later filter in a chain sees the response first).
  onResponseHeaders(headerCount: u32, endOfStream: bool): u32 {
    const payload = this.payload;
    if (payload !== null && this.payloadActive) {
      const action = payload.onResponseHeaders(headerCount, endOfStream);
      if (action != Action.CONTINUE) return action;
    }
    const rate = this.rate;
    return rate !== null ? rate.onResponseHeaders(headerCount, endOfStream) : Action.CONTINUE;
  }

  onResponseBody(bodySize: u32, endOfStream: bool): u32 {
    const payload = this.payload;
    if (payload === null || !this.payloadActive) return Action.CONTINUE;
    return payload.onResponseBody(bodySize, endOfStream);
  }

  onDone(): void {
    const rate = this.rate;
    if (rate !== null) rate.onDone(); // returns it to rate-limit's own pool
    this.rate = null;
    const payload = this.payload;
    if (payload !== null && this.payloadActive) payload.onDone();
    this.shared.pool.push(this);
  }
}
