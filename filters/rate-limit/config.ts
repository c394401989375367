// rate-limit configuration: parsed and validated once in onConfigure.
import { parseJson, jsonError, JsonValue } from "../shared/json";
import { configError, resetConfigError, fail, isObject, onlyKeys, intField, arrayField, stringField, boolField } from "../shared/config";
import { CallerRule, Limit, MAX_IDENTITY_BYTES } from "./logic";

// Bounds keep nano-token arithmetic (burst * 1e9) far from u64 overflow.
const MAX_RATE: f64 = 1_000_000;
// Buckets in all: maxCallers shared slots plus one reserved per exact rule (plus the overflow).
const MAX_BUCKETS: i64 = 1_000_000;
const MAX_IDLE_SECONDS: f64 = 3600;

export const enum IdentitySource { PeerCertificate, Header }

export class RateConfig {
  identitySource: IdentitySource = IdentitySource.PeerCertificate;
  identityHeader: string = "";
  defaultLimit: Limit = new Limit(1, 1);
  callers: CallerRule[] = [];
  /** Exact `callers` rules, numbered 0..reserved-1 in CallerRule.reserved: each has a bucket of its own. */
  reserved: i32 = 0;
  /** Requests without an identity: denied (403), or limited together under the default limit. */
  allowUnauthenticated: bool = false;
  /** Shared slots, for identities without an exact rule. */
  maxCallers: u32 = 10000;
  /** A shared slot goes to another identity only once its caller has sent nothing for this long (and its bucket is full). */
  idleSeconds: u32 = 1;
  /** What to do when shared data keeps conflicting or fails: deny (429) unless told to allow. */
  failOpen: bool = false;
  /**
   * x-ratelimit-* on allowed responses (429s always carry them). Off, the
   * filter never needs the response-headers callback, so a guard build
   * without it can run this configuration (one VM crossing fewer per request).
   */
  budgetHeaders: bool = true;
}

export let rateConfigError = "";

function parseLimit(obj: JsonValue | null, where: string, extra: string[]): Limit | null {
  if (!isObject(obj, where)) return null;
  const o = obj!;
  const allowed = ["perSecond", "burst"].concat(extra);
  if (!onlyKeys(o, allowed, where)) return null;
  const perSecond = intField(o, "perSecond", 1, MAX_RATE, true, 1, where);
  const burst = intField(o, "burst", 1, MAX_RATE, true, 1, where);
  if (configError.length > 0) return null;
  return new Limit(<u64>perSecond, <u64>burst);
}

function choice(obj: JsonValue, key: string, options: string[], fallback: string, where: string): string {
  const v = stringField(obj, key, false, fallback, where);
  if (!options.includes(v)) fail(where + "." + key + " must be one of " + options.join(", "));
  return v;
}

export function parseRateConfig(text: string): RateConfig | null {
  resetConfigError();
  rateConfigError = "";
  const root = parseJson(text);
  if (root === null) { rateConfigError = "configuration is not valid JSON: " + jsonError; return null; }
  return rateConfigFrom(root, "configuration");
}

/** Validates an already parsed object found at `where` (the combined guard filter nests it). */
export function rateConfigFrom(root: JsonValue, where: string): RateConfig | null {
  rateConfigError = "";
  if (!isObject(root, where) ||
      !onlyKeys(root, ["identity", "default", "callers", "unauthenticated", "maxCallers", "idleSeconds", "failureMode", "budgetHeaders"], where)) {
    rateConfigError = configError;
    return null;
  }
  const cfg = new RateConfig();
  const identity = stringField(root, "identity", true, "", where);
  if (identity == "peer_certificate") {
    cfg.identitySource = IdentitySource.PeerCertificate;
  } else if (identity.startsWith("header:") && identity.length > 7) {
    cfg.identitySource = IdentitySource.Header;
    cfg.identityHeader = identity.substring(7).toLowerCase();
  } else if (configError.length == 0) {
    fail(where + ".identity must be \"peer_certificate\" or \"header:<name>\"");
  }
  const def = parseLimit(root.get("default"), where + ".default", []);
  if (def !== null) cfg.defaultLimit = def;
  const callers = arrayField(root, "callers", where);
  for (let i = 0; i < callers.length && configError.length == 0; i++) {
    const w = where + ".callers[" + i.toString() + "]";
    const c = unchecked(callers[i]);
    const limit = parseLimit(c, w, ["match"]);
    if (limit === null) break;
    const match = stringField(c, "match", true, "", w);
    if (configError.length > 0) break;
    const star = match.indexOf("*");
    if (match.length == 0 || (star >= 0 && star != match.length - 1) || match == "*") {
      fail(w + ".match must be an identity, or a prefix ending in a single trailing *");
      break;
    }
    const rule = star >= 0 ? new CallerRule(match.substring(0, star), true, limit, -1) : new CallerRule(match, false, limit, cfg.reserved);
    // Identities longer than this are treated as none, so such a rule could never apply.
    if (rule.bytes.byteLength > MAX_IDENTITY_BYTES) {
      fail(w + ".match is longer than " + MAX_IDENTITY_BYTES.toString() + " bytes, the longest identity");
      break;
    }
    // A second rule for the same match would never apply (the first one wins).
    for (let j = 0; j < cfg.callers.length; j++) {
      const other = unchecked(cfg.callers[j]);
      if (other.prefix == rule.prefix && other.match == rule.match) {
        fail(w + ".match repeats callers[" + j.toString() + "].match");
        break;
      }
    }
    if (configError.length > 0) break;
    if (!rule.prefix) cfg.reserved++;
    cfg.callers.push(rule);
  }
  cfg.allowUnauthenticated = choice(root, "unauthenticated", ["deny", "allow"], "deny", where) == "allow";
  cfg.failOpen = choice(root, "failureMode", ["deny", "allow"], "deny", where) == "allow";
  const maxCallers = intField(root, "maxCallers", 1, MAX_RATE, false, 10000, where);
  // Reserved buckets come on top of the shared slots; the total keeps the same bound.
  if (configError.length == 0 && maxCallers + cfg.reserved > MAX_BUCKETS) {
    fail(where + ".maxCallers (" + maxCallers.toString() + ") plus one bucket for each of the " + cfg.reserved.toString() +
      " exact callers rules must be at most " + MAX_BUCKETS.toString());
  }
  cfg.maxCallers = <u32>maxCallers;
  cfg.idleSeconds = <u32>intField(root, "idleSeconds", 0, MAX_IDLE_SECONDS, false, 1, where);
  cfg.budgetHeaders = boolField(root, "budgetHeaders", true, where);
  if (configError.length > 0) { rateConfigError = configError; return null; }
  return cfg;
}
