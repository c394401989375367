/**
 * Which member of CheckResponse's http_response oneof an encoded response
 * carries: denied_response (field 2) or ok_response (field 3); null if neither.
 * Walks the top-level fields only (all are length-delimited messages), so the
 * load generator spends its CPU on sending, not on decoding whole responses.
 */
export function checkResult(b: Buffer): 'ok' | 'denied' | null {
  const varint = (at: number): [number, number] => {
    let v = 0;
    let shift = 0;
    for (let i = at; i < b.length; i++) {
      v += (b[i]! & 0x7f) * 2 ** shift;
      if ((b[i]! & 0x80) === 0) return [v, i + 1];
      shift += 7;
    }
    return [NaN, b.length];
  };
  let result: 'ok' | 'denied' | null = null;
  for (let at = 0; at < b.length;) {
    const [tag, next] = varint(at);
    if ((tag & 7) !== 2) return null;
    const [len, body] = varint(next);
    if (tag >>> 3 === 2) result = 'denied';
    if (tag >>> 3 === 3) result = 'ok';
    at = body + len;
  }
  return result;
}
