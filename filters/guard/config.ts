// guard configuration: a rate-limit and a payload-limit configuration side by
// side, each checked by its own filter's validator (same rules and messages,
// located under configuration.rateLimit / configuration.payloadLimit).
import { parseJson, jsonError } from "../shared/json";
import { configError, resetConfigError, isObject, onlyKeys } from "../shared/config";
import { PayloadConfig, payloadConfigFrom, payloadConfigError } from "../payload-limit/config";
import { RateConfig, rateConfigFrom, rateConfigError } from "../rate-limit/config";

export class GuardConfig {
  rate: RateConfig | null = null;
  payload: PayloadConfig | null = null;
}

export let guardConfigError = "";

export function parseGuardConfig(text: string): GuardConfig | null {
  resetConfigError();
  guardConfigError = "";
  const root = parseJson(text);
  if (root === null) { guardConfigError = "configuration is not valid JSON: " + jsonError; return null; }
  const where = "configuration";
  if (!isObject(root, where) || !onlyKeys(root, ["rateLimit", "payloadLimit"], where)) {
    guardConfigError = configError;
    return null;
  }
  const rate = root.get("rateLimit");
  const payload = root.get("payloadLimit");
  // A guard that checks nothing is a mistake, not a pass-through.
  if (rate === null && payload === null) {
    guardConfigError = where + " needs \"rateLimit\", \"payloadLimit\" or both";
    return null;
  }
  const cfg = new GuardConfig();
  if (rate !== null) {
    cfg.rate = rateConfigFrom(rate, where + ".rateLimit");
    if (cfg.rate === null) { guardConfigError = rateConfigError; return null; }
  }
  if (payload !== null) {
    cfg.payload = payloadConfigFrom(payload, where + ".payloadLimit");
    if (cfg.payload === null) { guardConfigError = payloadConfigError; return null; }
  }
  return cfg;
}
