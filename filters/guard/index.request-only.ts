// guard build with request callbacks only (guard-request-only.wasm): for
// configurations that never touch a response, i.e. no response cap and
// rateLimit.budgetHeaders false. Envoy then never enters the VM on the way back.
import { registerRoot, RootContext } from "../shared/context";
import { REQUEST_ONLY } from "./callbacks";
import { GuardRoot } from "./root";

export {
  proxy_abi_version_0_2_1, proxy_on_memory_allocate, malloc, proxy_on_context_create, proxy_on_vm_start,
  proxy_on_configure, proxy_on_tick, proxy_on_request_headers, proxy_on_request_body, proxy_on_delete,
} from "../shared/exports";

registerRoot((id: u32): RootContext => new GuardRoot(id, REQUEST_ONLY));
