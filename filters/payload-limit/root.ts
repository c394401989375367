// payload-limit root context: owns the validated config and the counters.
import { RootContext, HttpContext } from "../shared/context";
import { logError } from "../shared/host";
import { FilterMetrics } from "../shared/metrics";
import { PayloadConfig, parsePayloadConfig, payloadConfigError } from "./config";
import { PayloadLimitStream } from "./filter";

export class PayloadLimitRoot extends RootContext {
  private config: PayloadConfig | null = null;
  private metrics: FilterMetrics | null = null;

  onConfigure(configuration: string): bool {
    const cfg = parsePayloadConfig(configuration);
    if (cfg === null) {
      logError("payload-limit: rejecting configuration: " + payloadConfigError);
      return false;
    }
    this.config = cfg;
    if (this.metrics === null) this.metrics = new FilterMetrics("payload_limit");
    return true;
  }

  onTick(): void {
    const m = this.metrics;
    if (m !== null) m.allowed.flush();
  }

  newHttpContext(id: u32): HttpContext | null {
    const cfg = this.config;
    const metrics = this.metrics;
    if (cfg === null || metrics === null) return null;
    return new PayloadLimitStream(id, cfg, metrics);
  }
}
