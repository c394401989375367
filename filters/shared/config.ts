// Helpers for strict configuration checks. Each returns a value and records the
// first problem in `configError`, so a root's onConfigure reads straight through
// and rejects at the end with one precise message.
import { JsonValue, Kind } from "./json";

export let configError = "";

export function resetConfigError(): void { configError = ""; }

export function fail(msg: string): void {
  if (configError.length == 0) configError = msg;
}

export function isObject(v: JsonValue | null, where: string): bool {
  if (v === null || v.kind != Kind.Object) { fail(where + " must be an object"); return false; }
  return true;
}

/** Rejects keys outside `allowed`: a typo must not silently fall back to a default. */
export function onlyKeys(obj: JsonValue, allowed: string[], where: string): bool {
  for (let i = 0; i < obj.keys.length; i++) {
    const k = unchecked(obj.keys[i]);
    if (!allowed.includes(k)) { fail(where + ": unknown key \"" + k + "\""); return false; }
  }
  return true;
}

/** An integer in [min, max]; `fallback` when the key is absent and not required. */
export function intField(obj: JsonValue, key: string, min: f64, max: f64, required: bool, fallback: i64, where: string): i64 {
  const v = obj.get(key);
  if (v === null) {
    if (required) fail(where + "." + key + " is required");
    return fallback;
  }
  if (v.kind != Kind.Number || v.num != Math.floor(v.num) || v.num < min || v.num > max) {
    fail(where + "." + key + " must be an integer from " + (<i64>min).toString() + " to " + (<i64>max).toString());
    return fallback;
  }
  return <i64>v.num;
}

export function boolField(obj: JsonValue, key: string, fallback: bool, where: string): bool {
  const v = obj.get(key);
  if (v === null) return fallback;
  if (v.kind != Kind.Bool) { fail(where + "." + key + " must be true or false"); return fallback; }
  return v.bool;
}

export function stringField(obj: JsonValue, key: string, required: bool, fallback: string, where: string): string {
  const v = obj.get(key);
  if (v === null) {
    if (required) fail(where + "." + key + " is required");
    return fallback;
  }
  if (v.kind != Kind.String) { fail(where + "." + key + " must be a string"); return fallback; }
  return v.str;
}

export function arrayField(obj: JsonValue, key: string, where: string): JsonValue[] {
  const v = obj.get(key);
  if (v === null) return [];
  if (v.kind != Kind.Array) { fail(where + "." + key + " must be an array"); return []; }
  return v.items;
}
