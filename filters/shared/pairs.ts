// A serialized header map (what proxy_get_header_map_pairs returns), read in
// place over raw memory. Layout (ABI 0.2.1, little-endian): u32 n, then n
// pairs of (u32 key length, u32 value length), then each key and each value
// followed by a NUL (lengths exclude it). An empty map is size 0 or one NUL.
// Pure: no host calls and no allocation. Every read is bounds-checked against
// the buffer's length first, so a malformed buffer is reported (-1), never
// read past or trapped on: a trap would take the worker's VM down.

/** Bytes before the first key: the count and one (key, value) length pair per header. */
function tableBytes(n: u32): u64 { return 4 + <u64>n * 8; }

/**
 * The number of pairs when [ptr, ptr + len) is exactly one well-formed map,
 * else -1 (truncated, lengths past the end, a missing NUL, trailing bytes).
 */
export function pairCount(ptr: usize, len: u32): i32 {
  if (len == 0) return 0;
  if (len < 4) return len == 1 && load<u8>(ptr) == 0 ? 0 : -1;
  const n = load<u32>(ptr);
  // Each pair takes at least 10 bytes (two lengths, two NULs): this bounds n
  // before any arithmetic on it, and keeps it a valid i32.
  if (<u64>n * 10 > <u64>(len - 4)) return -1;
  let at = tableBytes(n);
  for (let i: u32 = 0; i < n; i++) {
    const lengths = ptr + 4 + i * 8;
    at += <u64>load<u32>(lengths);
    if (at >= <u64>len || load<u8>(ptr + <usize>at) != 0) return -1;
    at += 1 + <u64>load<u32>(lengths, 4);
    if (at >= <u64>len || load<u8>(ptr + <usize>at) != 0) return -1;
    at += 1;
  }
  return at == <u64>len ? <i32>n : -1;
}

/**
 * Where the value of the FIRST pair whose key is exactly `name` (bytes, no
 * case folding: Envoy hands keys over lower-cased) sits in a map that
 * pairCount found well formed with `count` pairs: the value's offset from
 * `ptr` in the high 32 bits and its length in the low 32; -1 when absent.
 * First, because Envoy's proxy_get_header_map_value answers with the first
 * of repeated headers, and a filter must read the same value either way.
 */
export function findPair(ptr: usize, count: i32, name: usize, nameLen: i32): i64 {
  let at = <usize>tableBytes(<u32>count);
  for (let i = 0; i < count; i++) {
    const lengths = ptr + 4 + <usize>i * 8;
    const keyLen = <i32>load<u32>(lengths);
    const valueLen = <i32>load<u32>(lengths, 4);
    const value = at + <usize>keyLen + 1;
    if (keyLen == nameLen && memory.compare(ptr + at, name, <usize>nameLen) == 0) {
      return (<i64>value << 32) | <i64>valueLen;
    }
    at = value + <usize>valueLen + 1;
  }
  return -1;
}
