// Typed wrappers over the host functions. Every wrapper returns a status or a
// nullable value instead of throwing: a trap in a filter kills the worker's VM.
import {
  proxy_log, proxy_get_buffer_bytes, proxy_get_header_map_value, proxy_get_header_map_pairs, proxy_add_header_map_value,
  proxy_replace_header_map_value, proxy_send_local_response, proxy_close_stream, proxy_get_property,
  proxy_get_shared_data, proxy_set_shared_data, proxy_define_metric, proxy_increment_metric,
  proxy_set_tick_period_milliseconds, clock_time_get,
} from "./imports";
import { Status, MetricType, LogLevel } from "./status";

// Out-parameters live in static memory so that a host call allocates nothing
// on our side; the host writes them before we read them back in the same call.
const RET_PTR: usize = memory.data(8);
const RET_SIZE: usize = memory.data(8);
const RET_CAS: usize = memory.data(8);

/** Takes ownership of a host-allocated buffer (the host called our malloc) and frees it. */
function takeString(): string {
  const ptr = load<usize>(RET_PTR);
  const size = load<u32>(RET_SIZE);
  if (ptr == 0) return "";
  const s = String.UTF8.decodeUnsafe(ptr, size);
  heap.free(ptr);
  return s;
}

function takeBytes(): ArrayBuffer {
  const ptr = load<usize>(RET_PTR);
  const size = load<u32>(RET_SIZE);
  const buf = new ArrayBuffer(<i32>size);
  if (ptr != 0) {
    memory.copy(changetype<usize>(buf), ptr, size);
    heap.free(ptr);
  }
  return buf;
}

/**
 * Bytes the host handed over through our malloc, used in place instead of
 * copied into a GC object: the request path then allocates nothing the
 * collector has to trace. One instance is reused per purpose (a VM runs one
 * callback at a time); fill() and borrow() free what it held before.
 */
export class HostBytes {
  ptr: usize = 0;
  len: i32 = 0;
  /** False when the bytes belong to another buffer (borrow): release then frees nothing. */
  private owned: bool = false;

  release(): void {
    if (this.owned && this.ptr != 0) heap.free(this.ptr);
    this.ptr = 0;
    this.len = 0;
    this.owned = false;
  }

  fill(): void {
    this.release();
    this.ptr = load<usize>(RET_PTR);
    this.len = <i32>load<u32>(RET_SIZE);
    this.owned = this.ptr != 0;
    if (this.ptr == 0) this.len = 0;
  }

  /** Points at bytes inside a buffer another HostBytes owns (valid while that one holds it). */
  borrow(ptr: usize, len: i32): void {
    this.release();
    this.ptr = ptr;
    this.len = len;
  }

  equals(b: ArrayBuffer): bool {
    return this.len == b.byteLength && memory.compare(this.ptr, changetype<usize>(b), <usize>this.len) == 0;
  }

  startsWith(b: ArrayBuffer): bool {
    return this.len >= b.byteLength && memory.compare(this.ptr, changetype<usize>(b), <usize>b.byteLength) == 0;
  }
}

function clearRet(): void {
  store<usize>(RET_PTR, 0);
  store<u32>(RET_SIZE, 0);
  store<u32>(RET_CAS, 0);
}

export function log(level: u32, msg: string): void {
  const b = String.UTF8.encode(msg);
  proxy_log(level, changetype<usize>(b), b.byteLength);
}

export function logWarn(msg: string): void { log(LogLevel.WARN, msg); }
export function logError(msg: string): void { log(LogLevel.ERROR, msg); }

/** Reads a whole configuration buffer (plugin or VM) as UTF-8. */
export function getBufferString(bufferType: u32, size: u32): string {
  clearRet();
  if (size == 0) return "";
  const st = proxy_get_buffer_bytes(bufferType, 0, size, RET_PTR, RET_SIZE);
  if (st != Status.OK) return "";
  return takeString();
}

/** Pre-encoded header name: encoded once at configure time, reused per request. */
export class Name {
  readonly bytes: ArrayBuffer;
  constructor(readonly text: string) { this.bytes = String.UTF8.encode(text); }
}

/** A header's value bytes in `out`; false, and `out` empty, when absent (ABI 0.2: NOT_FOUND for missing keys). */
export function getHeaderBytes(mapType: u32, name: Name, out: HostBytes): bool {
  clearRet();
  const st = proxy_get_header_map_value(mapType, changetype<usize>(name.bytes), name.bytes.byteLength, RET_PTR, RET_SIZE);
  if (st != Status.OK) { out.release(); return false; }
  out.fill();
  return true;
}

/**
 * The whole header map, serialized (filters/shared/pairs.ts reads it), in
 * `out`: one host call and one malloc crossing however many headers are then
 * read from it. False, and `out` empty, when the host has no such map.
 */
export function getHeaderPairs(mapType: u32, out: HostBytes): bool {
  clearRet();
  const st = proxy_get_header_map_pairs(mapType, RET_PTR, RET_SIZE);
  if (st != Status.OK) { out.release(); return false; }
  out.fill();
  return true;
}

// Decimal digits of a u64 are written here: no string on the request path.
const DIGITS: usize = memory.data(24);

/** Adds a header whose value is `value` in decimal. */
export function addHeaderU64(mapType: u32, name: Name, value: u64): u32 {
  let end = DIGITS + 24;
  let p = end;
  do {
    p--;
    store<u8>(p, <u8>(48 + value % 10));
    value /= 10;
  } while (value != 0);
  return proxy_add_header_map_value(mapType, changetype<usize>(name.bytes), name.bytes.byteLength, p, end - p);
}

export function addHeader(mapType: u32, name: Name, value: string): u32 {
  const v = String.UTF8.encode(value);
  return proxy_add_header_map_value(mapType, changetype<usize>(name.bytes), name.bytes.byteLength, changetype<usize>(v), v.byteLength);
}

export function replaceHeader(mapType: u32, name: Name, value: string): u32 {
  const v = String.UTF8.encode(value);
  return proxy_replace_header_map_value(mapType, changetype<usize>(name.bytes), name.bytes.byteLength, changetype<usize>(v), v.byteLength);
}

/**
 * Serialises header pairs the way the ABI expects: u32 count, then (u32 key
 * length, u32 value length) per pair, then each key and value followed by NUL.
 */
export function serializeHeaders(pairs: string[]): ArrayBuffer {
  const n = pairs.length >>> 1;
  const encoded = new Array<ArrayBuffer>(n * 2);
  let total = 4 + n * 8;
  for (let i = 0; i < n * 2; i++) {
    const b = String.UTF8.encode(unchecked(pairs[i]));
    unchecked(encoded[i] = b);
    total += b.byteLength + 1;
  }
  const out = new ArrayBuffer(total);
  const base = changetype<usize>(out);
  store<u32>(base, n);
  let data = base + 4 + n * 8;
  for (let i = 0; i < n * 2; i++) {
    const b = unchecked(encoded[i]);
    store<u32>(base + 4 + i * 4, b.byteLength);
    memory.copy(data, changetype<usize>(b), b.byteLength);
    data += b.byteLength;
    store<u8>(data, 0);
    data += 1;
  }
  return out;
}

/**
 * Ends the stream with a locally generated response. `headerPairs` is a flat
 * [name, value, name, value…] list. grpcStatus >= 0 makes Envoy answer a gRPC
 * request with that grpc-status (trailers-only); GRPC_NONE leaves it an HTTP reply.
 */
export function sendLocalResponse(status: u32, details: string, body: string, headerPairs: string[], grpcStatus: i32): u32 {
  const d = String.UTF8.encode(details);
  const b = String.UTF8.encode(body);
  const h = serializeHeaders(headerPairs);
  return proxy_send_local_response(status, changetype<usize>(d), d.byteLength, changetype<usize>(b), b.byteLength,
    changetype<usize>(h), h.byteLength, grpcStatus);
}

export function closeStream(streamType: u32): u32 {
  return proxy_close_stream(streamType);
}

/** Joins property path segments with NUL, which is how Envoy splits them. */
export function propertyPath(segments: string[]): ArrayBuffer {
  return String.UTF8.encode(segments.join("\0"));
}

/** A string property (e.g. connection\0uri_san_peer_certificate), or null if absent. */
export function getPropertyString(path: ArrayBuffer): string | null {
  clearRet();
  const st = proxy_get_property(changetype<usize>(path), path.byteLength, RET_PTR, RET_SIZE);
  if (st != Status.OK) return null;
  return takeString();
}

/** Like getPropertyString, but leaves the value's bytes in `out`. */
export function getPropertyBytes(path: ArrayBuffer, out: HostBytes): bool {
  clearRet();
  const st = proxy_get_property(changetype<usize>(path), path.byteLength, RET_PTR, RET_SIZE);
  if (st != Status.OK) { out.release(); return false; }
  out.fill();
  return true;
}

/** Result of a shared-data read: status, value bytes, and the CAS token to write back with. */
export class SharedValue {
  constructor(readonly status: u32, readonly bytes: ArrayBuffer, readonly cas: u32) {}
}

export function getSharedData(key: ArrayBuffer): SharedValue {
  clearRet();
  const st = proxy_get_shared_data(changetype<usize>(key), key.byteLength, RET_PTR, RET_SIZE, RET_CAS);
  const cas = load<u32>(RET_CAS);
  if (st != Status.OK) return new SharedValue(st, new ArrayBuffer(0), 0);
  return new SharedValue(st, takeBytes(), cas);
}

/**
 * Shared-data read into `out` (empty unless OK); returns the status. The CAS
 * token to write back with is sharedCas() until the next read.
 */
export function getSharedDataBytes(keyPtr: usize, keyLen: i32, out: HostBytes): u32 {
  clearRet();
  const st = proxy_get_shared_data(keyPtr, keyLen, RET_PTR, RET_SIZE, RET_CAS);
  lastCas = load<u32>(RET_CAS);
  if (st != Status.OK) { out.release(); return st; }
  out.fill();
  return st;
}

let lastCas: u32 = 0;
export function sharedCas(): u32 { return lastCas; }

/** setSharedData with key and value in raw memory. */
export function setSharedDataRaw(keyPtr: usize, keyLen: i32, ptr: usize, len: i32, cas: u32): u32 {
  return proxy_set_shared_data(keyPtr, keyLen, ptr, len, cas);
}

/** CAS_MISMATCH when another worker wrote since our read; cas 0 means unconditional. */
export function setSharedData(key: ArrayBuffer, value: ArrayBuffer, cas: u32): u32 {
  return proxy_set_shared_data(changetype<usize>(key), key.byteLength, changetype<usize>(value), value.byteLength, cas);
}

// Envoy numbers its first counter 0, so "no metric" needs another sentinel.
export const NO_METRIC: u32 = u32.MAX_VALUE;

/** Counter id, or NO_METRIC when the host refused (we then skip increments rather than fail). */
export function defineCounter(name: string): u32 {
  const b = String.UTF8.encode(name);
  store<u32>(RET_SIZE, NO_METRIC);
  const st = proxy_define_metric(MetricType.COUNTER, changetype<usize>(b), b.byteLength, RET_SIZE);
  if (st != Status.OK) return NO_METRIC;
  return load<u32>(RET_SIZE);
}

export function incrementCounterBy(id: u32, n: i64): void {
  if (id != NO_METRIC) proxy_increment_metric(id, n);
}

export function setTickPeriod(ms: u32): void {
  proxy_set_tick_period_milliseconds(ms);
}

/** Monotonic nanoseconds, or 0 if the host cannot give it (callers treat 0 as "no time passed"). */
export function monotonicNanos(): u64 {
  store<u64>(RET_CAS, 0);
  const errno = clock_time_get(1, 0, RET_CAS);
  if (errno != 0) return 0;
  return load<u64>(RET_CAS);
}
