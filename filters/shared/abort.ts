// Replaces AssemblyScript's `env.abort` import (which Envoy does not provide).
// Reached only for states that cannot happen (out-of-memory, a bug); the
// request path never throws. Log why, then trap: the VM is unusable anyway and
// Envoy applies the plugin's failure_policy (fail closed by default).
import { proxy_log } from "./imports";

export function filterAbort(message: string | null, fileName: string | null, line: u32, column: u32): void {
  const text = "infergate filter abort: " + (message !== null ? message : "") + " at " +
    (fileName !== null ? fileName : "?") + ":" + line.toString() + ":" + column.toString();
  const b = String.UTF8.encode(text);
  proxy_log(5, changetype<usize>(b), b.byteLength);
  unreachable();
}
