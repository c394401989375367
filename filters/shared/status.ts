// Numeric values fixed by the Proxy-Wasm ABI 0.2.1 spec ("Types").

export namespace Status {
  export const OK: u32 = 0;
  export const NOT_FOUND: u32 = 1;
  export const BAD_ARGUMENT: u32 = 2;
  export const EMPTY: u32 = 7;
  export const CAS_MISMATCH: u32 = 8;
}

export namespace Action {
  export const CONTINUE: u32 = 0;
  // Envoy reads 1 from a headers callback as StopAllIterationAndWatermark and
  // from a body callback as StopIterationAndBuffer; we only pause after a
  // local reply, where the host forces a stop anyway.
  export const PAUSE: u32 = 1;
}

export namespace BufferType {
  export const HTTP_REQUEST_BODY: u32 = 0;
  export const HTTP_RESPONSE_BODY: u32 = 1;
  export const VM_CONFIGURATION: u32 = 6;
  export const PLUGIN_CONFIGURATION: u32 = 7;
}

export namespace MapType {
  export const HTTP_REQUEST_HEADERS: u32 = 0;
  export const HTTP_REQUEST_TRAILERS: u32 = 1;
  export const HTTP_RESPONSE_HEADERS: u32 = 2;
  export const HTTP_RESPONSE_TRAILERS: u32 = 3;
}

export namespace StreamType {
  export const HTTP_REQUEST: u32 = 0;
  export const HTTP_RESPONSE: u32 = 1;
}

export namespace LogLevel {
  export const TRACE: u32 = 0;
  export const DEBUG: u32 = 1;
  export const INFO: u32 = 2;
  export const WARN: u32 = 3;
  export const ERROR: u32 = 4;
  export const CRITICAL: u32 = 5;
}

export namespace MetricType {
  export const COUNTER: u32 = 0;
  export const GAUGE: u32 = 1;
}

/** gRPC RESOURCE_EXHAUSTED; -1 means "not a gRPC reply" to proxy_send_local_response. */
export const GRPC_RESOURCE_EXHAUSTED: i32 = 8;
export const GRPC_NONE: i32 = -1;
