// guard build without the response-body callback (guard-no-response-body.wasm):
// for configurations with no response cap (payloadLimit.maxResponseBytes 0).
// The response-headers callback stays for the rate limit's budget headers.
import { registerRoot, RootContext } from "../shared/context";
import { NO_RESPONSE_BODY } from "./callbacks";
import { GuardRoot } from "./root";

export {
  proxy_abi_version_0_2_1, proxy_on_memory_allocate, malloc, proxy_on_context_create, proxy_on_vm_start,
  proxy_on_configure, proxy_on_tick, proxy_on_request_headers, proxy_on_request_body, proxy_on_response_headers,
  proxy_on_delete,
} from "../shared/exports";

registerRoot((id: u32): RootContext => new GuardRoot(id, NO_RESPONSE_BODY));
