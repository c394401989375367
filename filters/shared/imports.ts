// Host functions of Proxy-Wasm ABI 0.2.1 as Envoy registers them, plus the one
// WASI clock we need. Only what is declared AND called ends up as an import
// (asc tree-shakes), and test/filters/imports.test.ts pins the exact list.
// Every function returns a proxy_status_t (see status.ts).

@external("env", "proxy_log")
export declare function proxy_log(level: u32, msg: usize, size: usize): u32;

@external("env", "proxy_get_buffer_bytes")
export declare function proxy_get_buffer_bytes(bufferType: u32, start: u32, maxSize: u32, retPtr: usize, retSize: usize): u32;

@external("env", "proxy_get_header_map_value")
export declare function proxy_get_header_map_value(mapType: u32, key: usize, keySize: usize, retPtr: usize, retSize: usize): u32;

@external("env", "proxy_get_header_map_pairs")
export declare function proxy_get_header_map_pairs(mapType: u32, retPtr: usize, retSize: usize): u32;

@external("env", "proxy_add_header_map_value")
export declare function proxy_add_header_map_value(mapType: u32, key: usize, keySize: usize, value: usize, valueSize: usize): u32;

@external("env", "proxy_replace_header_map_value")
export declare function proxy_replace_header_map_value(mapType: u32, key: usize, keySize: usize, value: usize, valueSize: usize): u32;

@external("env", "proxy_send_local_response")
export declare function proxy_send_local_response(
  statusCode: u32, details: usize, detailsSize: usize, body: usize, bodySize: usize,
  headers: usize, headersSize: usize, grpcStatus: i32): u32;

@external("env", "proxy_close_stream")
export declare function proxy_close_stream(streamType: u32): u32;

@external("env", "proxy_get_property")
export declare function proxy_get_property(path: usize, pathSize: usize, retPtr: usize, retSize: usize): u32;

@external("env", "proxy_get_shared_data")
export declare function proxy_get_shared_data(key: usize, keySize: usize, retPtr: usize, retSize: usize, retCas: usize): u32;

@external("env", "proxy_set_shared_data")
export declare function proxy_set_shared_data(key: usize, keySize: usize, value: usize, valueSize: usize, cas: u32): u32;

@external("env", "proxy_define_metric")
export declare function proxy_define_metric(metricType: u32, name: usize, nameSize: usize, retId: usize): u32;

@external("env", "proxy_increment_metric")
export declare function proxy_increment_metric(metricId: u32, offset: i64): u32;

@external("env", "proxy_set_tick_period_milliseconds")
export declare function proxy_set_tick_period_milliseconds(periodMs: u32): u32;

// Envoy's proxy_get_current_time_nanoseconds is the wall clock; token refill
// needs a clock that cannot jump, so we take WASI's MONOTONIC (id 1), which
// proxy-wasm-cpp-host implements for both WASI module names.
@external("wasi_snapshot_preview1", "clock_time_get")
export declare function clock_time_get(clockId: u32, precision: u64, retTime: usize): u16;
