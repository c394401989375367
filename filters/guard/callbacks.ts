// Which optional callbacks a guard build exports, and which of them a
// configuration needs. Envoy calls every proxy_on_* a module exports (each
// call a host→VM crossing), so guard is built several times, each build
// exporting only what a family of configurations uses (index*.ts). A build
// cannot tell from inside which functions it exports: its index file states
// it here, and test/filters/imports.test.ts pins each built module's export
// list to the same table (istio/render/guard-modules.ts).
import { GuardConfig } from "./config";

/** Request headers and body are in every build; these two are optional. */
export class Callbacks {
  constructor(readonly module: string, readonly responseHeaders: bool, readonly responseBody: bool) {}
}

export const FULL = new Callbacks("guard", true, true);
export const NO_RESPONSE_BODY = new Callbacks("guard-no-response-body", true, false);
export const REQUEST_ONLY = new Callbacks("guard-request-only", false, false);

/**
 * Why `have` cannot enforce `cfg` (a callback it needs is not exported), or ""
 * when it can. A build must refuse such a configuration: Envoy would never
 * call the missing callback, and the check would silently not happen.
 */
export function missingCallback(cfg: GuardConfig, have: Callbacks): string {
  const payload = cfg.payload;
  const rate = cfg.rate;
  // The response cap reads the response content-length, then counts the body.
  if (payload !== null && payload.maxResponseBytes > 0 && !(have.responseHeaders && have.responseBody)) {
    return "configuration.payloadLimit.maxResponseBytes (" + payload.maxResponseBytes.toString() +
      ") needs the response-headers and response-body callbacks, which this build (" + have.module +
      ") does not export: deploy guard.wasm";
  }
  if (rate !== null && rate.budgetHeaders && !have.responseHeaders) {
    return "configuration.rateLimit.budgetHeaders (true, the default) needs the response-headers callback, which this build (" +
      have.module + ") does not export: deploy guard-no-response-body.wasm, or set budgetHeaders to false";
  }
  return "";
}
