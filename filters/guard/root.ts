// guard root context: both checks' validated state and counters. The counters
// keep the separate filters' names (infergate.rate_limit.*, infergate.payload_limit.*),
// so dashboards and alerts do not care which form is deployed.
import { RootContext, HttpContext } from "../shared/context";
import { logError } from "../shared/host";
import { FilterMetrics } from "../shared/metrics";
import { newRateLimitShared } from "../rate-limit/root";
import { Callbacks, missingCallback } from "./callbacks";
import { parseGuardConfig, guardConfigError } from "./config";
import { GuardShared } from "./filter";

export class GuardRoot extends RootContext {
  private shared: GuardShared | null = null;
  private rateMetrics: FilterMetrics | null = null;
  private payloadMetrics: FilterMetrics | null = null;

  /** `callbacks`: what this build's index file exports. */
  constructor(id: u32, readonly callbacks: Callbacks) { super(id); }

  onConfigure(configuration: string): bool {
    const cfg = parseGuardConfig(configuration);
    if (cfg === null) {
      logError("guard: rejecting configuration: " + guardConfigError);
      return false;
    }
    // Fail closed: a check this build could not run is an error, never a pass.
    const missing = missingCallback(cfg, this.callbacks);
    if (missing.length > 0) {
      logError("guard: rejecting configuration: " + missing);
      return false;
    }
    const rateCfg = cfg.rate;
    if (rateCfg !== null && this.rateMetrics === null) this.rateMetrics = new FilterMetrics("rate_limit");
    if (cfg.payload !== null && this.payloadMetrics === null) this.payloadMetrics = new FilterMetrics("payload_limit");
    const rate = rateCfg !== null ? newRateLimitShared(rateCfg, this.rateMetrics!) : null;
    this.shared = new GuardShared(rate, cfg.payload, this.payloadMetrics);
    return true;
  }

  onTick(): void {
    const r = this.rateMetrics;
    if (r !== null) r.allowed.flush();
    const p = this.payloadMetrics;
    if (p !== null) p.allowed.flush();
  }

  newHttpContext(id: u32): HttpContext | null {
    const shared = this.shared;
    return shared !== null ? shared.stream(id) : null;
  }
}
