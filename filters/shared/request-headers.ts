// The request headers of the proxy_on_request_headers call in progress,
// fetched from the host at most once per call with proxy_get_header_map_pairs
// and read in place. Every value the host returns comes through a call into
// our malloc (a host→VM crossing, ~1.5 points of a cheap request's
// throughput); one fetch of the whole map costs one such crossing however many
// headers the checks then read (guard: the caller identity and content-length,
// plus :path with routes and content-type before a reply), where one
// proxy_get_header_map_value per header cost one each.
//
// One snapshot per VM: a VM runs one callback at a time, and exports.ts calls
// endRequestHeaders() when proxy_on_request_headers returns, because Envoy
// drops the map then (a later read must not see a previous request's headers).
import { Name, HostBytes, getHeaderPairs } from "./host";
import { pairCount, findPair } from "./pairs";
import { MapType } from "./status";

const NOT_FETCHED: i32 = -2;
const map = new HostBytes();
// Pairs in `map`; -1 when the host had no map or handed over a malformed one,
// which reads as a request without headers: the identity is then missing (the
// rate limit refuses the request unless anonymous callers are allowed) and the
// body is counted chunk by chunk, as for a request without content-length.
let count: i32 = NOT_FETCHED;

/**
 * Points `out` at the first value of request header `name` (borrowed from the
 * snapshot: valid until the callback returns); false, and `out` empty, when
 * absent. Only inside proxy_on_request_headers.
 */
export function requestHeader(name: Name, out: HostBytes): bool {
  if (count == NOT_FETCHED) {
    count = getHeaderPairs(MapType.HTTP_REQUEST_HEADERS, map) ? pairCount(map.ptr, <u32>map.len) : -1;
  }
  if (count <= 0) { out.release(); return false; }
  const at = findPair(map.ptr, count, changetype<usize>(name.bytes), name.bytes.byteLength);
  if (at < 0) { out.release(); return false; }
  out.borrow(map.ptr + <usize>(at >>> 32), <i32>(at & 0xffffffff));
  return true;
}

/** Forgets the snapshot (frees it); values borrowed from it are dangling from here on. */
export function endRequestHeaders(): void {
  map.release();
  count = NOT_FETCHED;
}
