// payload-limit root context: owns the validated config and the counters.
import { RootContext, HttpContext } from "../shared/context";
import { defineCounter, logError } from "../shared/host";
import { PayloadConfig, parsePayloadConfig, payloadConfigError } from "./config";
import { PayloadLimitStream, Metrics } from "./filter";

export class PayloadLimitRoot extends RootContext {
  private config: PayloadConfig | null = null;
  private metrics: Metrics | null = null;

  onConfigure(configuration: string): bool {
    const cfg = parsePayloadConfig(configuration);
    if (cfg === null) {
      logError("payload-limit: rejecting configuration: " + payloadConfigError);
      return false;
    }
    this.config = cfg;
    if (this.metrics === null) {
      this.metrics = new Metrics(
        defineCounter("infergate.payload_limit.allowed"),
        defineCounter("infergate.payload_limit.rejected"),
        defineCounter("infergate.payload_limit.errors"));
    }
    return true;
  }

  newHttpContext(id: u32): HttpContext | null {
    const cfg = this.config;
    const metrics = this.metrics;
    if (cfg === null || metrics === null) return null;
    return new PayloadLimitStream(id, cfg, metrics);
  }
}
