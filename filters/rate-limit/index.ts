// rate-limit module entry: the ABI exports this filter needs plus root
// registration, nothing else. Envoy calls every proxy_on_* a module exports,
// so leaving out body callbacks saves two VM crossings per request.
import { registerRoot, RootContext } from "../shared/context";
import { RateLimitRoot } from "./root";

export {
  proxy_abi_version_0_2_1, proxy_on_memory_allocate, malloc, proxy_on_context_create, proxy_on_vm_start,
  proxy_on_configure, proxy_on_tick, proxy_on_request_headers, proxy_on_response_headers, proxy_on_delete,
} from "../shared/exports";

registerRoot((id: u32): RootContext => new RateLimitRoot(id));
