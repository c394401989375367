// rate-limit root context: owns the validated config, the bucket table and the counters.
import { RootContext, HttpContext } from "../shared/context";
import { Name, logError, getPropertyString } from "../shared/host";
import { FilterMetrics } from "../shared/metrics";
import { RateConfig, parseRateConfig, rateConfigError } from "./config";
import { RateLimitShared } from "./filter";
import { NANO } from "./logic";
import { BucketTable } from "./store";

// A CAS loop that loses this many times in a row means heavy contention on one
// caller's bucket; we stop and apply failureMode rather than spin the worker.
const MAX_CAS_RETRIES = 16;

export class RateLimitRoot extends RootContext {
  private shared: RateLimitShared | null = null;
  private metrics: FilterMetrics | null = null;

  onConfigure(configuration: string): bool {
    const cfg = parseRateConfig(configuration);
    if (cfg === null) {
      logError("rate-limit: rejecting configuration: " + rateConfigError);
      return false;
    }
    if (this.metrics === null) this.metrics = new FilterMetrics("rate_limit");
    this.shared = newRateLimitShared(cfg, this.metrics!);
    return true;
  }

  onTick(): void {
    const m = this.metrics;
    if (m !== null) m.allowed.flush();
  }

  newHttpContext(id: u32): HttpContext | null {
    const shared = this.shared;
    if (shared === null) return null;
    return shared.stream(id);
  }
}

/** The per-VM state every rate-limit stream shares; also used by the combined guard filter. */
export function newRateLimitShared(cfg: RateConfig, metrics: FilterMetrics): RateLimitShared {
  // Keys are namespaced by plugin name so two filters sharing a vm_id keep
  // separate buckets, and shared slots by table size so a resized table never
  // reads slots laid out for another size. Reserved buckets are keyed by their
  // identity alone ("caller." is no table size), so resizing the table or
  // editing other rules leaves them be.
  const plugin = getPropertyString(String.UTF8.encode("plugin_name"));
  const base = "infergate.rl." + (plugin !== null ? plugin : "") + ".";
  const table = new BucketTable(base + cfg.maxCallers.toString() + ".", cfg.maxCallers, <u64>cfg.idleSeconds * NANO,
    base + "caller.", cfg.callers, MAX_CAS_RETRIES);
  return new RateLimitShared(cfg, table, metrics, new Name(cfg.identityHeader));
}
