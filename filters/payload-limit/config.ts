// payload-limit configuration: parsed and validated once in onConfigure.
import { parseJson, jsonError, JsonValue } from "../shared/json";
import { configError, resetConfigError, fail, isObject, onlyKeys, intField, arrayField, stringField } from "../shared/config";
import { RouteLimit, RouteKind } from "./logic";

// 2^50 bytes: far beyond any real body, small enough that sums never overflow i64.
const MAX_BYTES: f64 = 1125899906842624;

export class PayloadConfig {
  defaultMaxBytes: i64 = 0;
  routes: RouteLimit[] = [];
  /** 0 disables the response cap. */
  maxResponseBytes: i64 = 0;
}

/** The parsed config, or null with the reason in `payloadConfigError`. */
export let payloadConfigError = "";

export function parsePayloadConfig(text: string): PayloadConfig | null {
  resetConfigError();
  payloadConfigError = "";
  const root = parseJson(text);
  if (root === null) { payloadConfigError = "configuration is not valid JSON: " + jsonError; return null; }
  return payloadConfigFrom(root, "configuration");
}

/** Validates an already parsed object found at `where` (the combined guard filter nests it). */
export function payloadConfigFrom(root: JsonValue, where: string): PayloadConfig | null {
  payloadConfigError = "";
  if (!isObject(root, where) || !onlyKeys(root, ["defaultMaxBytes", "routes", "maxResponseBytes"], where)) {
    payloadConfigError = configError;
    return null;
  }
  const cfg = new PayloadConfig();
  cfg.defaultMaxBytes = intField(root, "defaultMaxBytes", 0, MAX_BYTES, true, 0, where);
  cfg.maxResponseBytes = intField(root, "maxResponseBytes", 0, MAX_BYTES, false, 0, where);
  const routes = arrayField(root, "routes", where);
  for (let i = 0; i < routes.length; i++) {
    const at = where + ".routes[" + i.toString() + "]";
    const r = unchecked(routes[i]);
    if (!isObject(r, at) || !onlyKeys(r, ["prefix", "path", "maxBytes"], at)) break;
    const route = parseRoute(r, at);
    if (route === null) break;
    cfg.routes.push(route);
  }
  if (configError.length > 0) { payloadConfigError = configError; return null; }
  return cfg;
}

function parseRoute(r: JsonValue, where: string): RouteLimit | null {
  const hasPrefix = r.get("prefix") !== null;
  const hasPath = r.get("path") !== null;
  if (hasPrefix == hasPath) { fail(where + " needs exactly one of \"prefix\" or \"path\""); return null; }
  const pattern = stringField(r, hasPrefix ? "prefix" : "path", true, "", where);
  if (configError.length > 0) return null;
  if (!pattern.startsWith("/")) { fail(where + ": pattern must start with /"); return null; }
  if (hasPrefix && pattern.includes("*")) { fail(where + ": \"prefix\" takes no wildcard; use \"path\""); return null; }
  const maxBytes = intField(r, "maxBytes", 0, MAX_BYTES, true, 0, where);
  if (configError.length > 0) return null;
  return new RouteLimit(hasPrefix ? RouteKind.Prefix : RouteKind.Path, pattern, maxBytes);
}
