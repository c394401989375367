// The proxy_on_* entry points Envoy calls, routed to root and HTTP contexts.
// A filter's index.ts re-exports this module (`export * from`).
import { roots, streams, createContext } from "./context";
import { getBufferString } from "./host";
import { endRequestHeaders } from "./request-headers";
import { Action, BufferType } from "./status";
// Pulled in so `--use abort=filters/shared/abort/filterAbort` can resolve it.
import "./abort";

export function proxy_abi_version_0_2_1(): void {}

// Envoy's host looks up `malloc` first and other hosts `proxy_on_memory_allocate`;
// both hand out raw (non-GC) blocks that host.ts frees after copying.
export function proxy_on_memory_allocate(size: usize): usize { return heap.alloc(size); }
export function malloc(size: usize): usize { return heap.alloc(size); }

export function proxy_on_context_create(contextId: u32, parentId: u32): void {
  createContext(contextId, parentId);
}

export function proxy_on_vm_start(rootId: u32, vmConfigurationSize: u32): bool { return true; }

export function proxy_on_configure(rootId: u32, configurationSize: u32): bool {
  if (!roots.has(rootId)) return false;
  const text = getBufferString(BufferType.PLUGIN_CONFIGURATION, configurationSize);
  return roots.get(rootId).onConfigure(text);
}

export function proxy_on_tick(rootId: u32): void {
  if (roots.has(rootId)) roots.get(rootId).onTick();
}

export function proxy_on_request_headers(contextId: u32, headerCount: u32, endOfStream: u32): u32 {
  if (!streams.has(contextId)) return Action.CONTINUE;
  const action = streams.get(contextId).onRequestHeaders(headerCount, endOfStream != 0);
  endRequestHeaders(); // Envoy drops the map now: no later callback may read this snapshot
  return action;
}

export function proxy_on_request_body(contextId: u32, bodySize: u32, endOfStream: u32): u32 {
  if (!streams.has(contextId)) return Action.CONTINUE;
  return streams.get(contextId).onRequestBody(bodySize, endOfStream != 0);
}

export function proxy_on_response_headers(contextId: u32, headerCount: u32, endOfStream: u32): u32 {
  if (!streams.has(contextId)) return Action.CONTINUE;
  return streams.get(contextId).onResponseHeaders(headerCount, endOfStream != 0);
}

export function proxy_on_response_body(contextId: u32, bodySize: u32, endOfStream: u32): u32 {
  if (!streams.has(contextId)) return Action.CONTINUE;
  return streams.get(contextId).onResponseBody(bodySize, endOfStream != 0);
}

export function proxy_on_done(contextId: u32): bool { return true; }

export function proxy_on_log(contextId: u32): void {}

// Filters export proxy_on_delete but not proxy_on_done: Envoy calls both at the
// end of every stream, so running onDone from here saves one VM crossing per request.
export function proxy_on_delete(contextId: u32): void {
  if (streams.has(contextId)) {
    streams.get(contextId).onDone();
    streams.delete(contextId);
  }
  else if (roots.has(contextId)) roots.delete(contextId);
}
