// guard module entry (full build, guard.wasm): rate-limit and payload-limit in
// one filter. Envoy gives every wasm filter its own stream context and
// callback crossings per request; one filter doing both checks pays that once
// instead of twice. This build exports every callback, so it runs any guard
// configuration; index.<variant>.ts are the smaller builds (callbacks.ts).
import { registerRoot, RootContext } from "../shared/context";
import { FULL } from "./callbacks";
import { GuardRoot } from "./root";

export {
  proxy_abi_version_0_2_1, proxy_on_memory_allocate, malloc, proxy_on_context_create, proxy_on_vm_start,
  proxy_on_configure, proxy_on_tick, proxy_on_request_headers, proxy_on_request_body, proxy_on_response_headers,
  proxy_on_response_body, proxy_on_delete,
} from "../shared/exports";

registerRoot((id: u32): RootContext => new GuardRoot(id, FULL));
