// Token-bucket math and caller matching over plain values. Tokens are kept in
// nano-tokens (1e9 per token) so refill is exact integer arithmetic on
// nanosecond clocks: perSecond tokens/s == perSecond nano-tokens/ns.

import { HostBytes } from "../shared/host";

export const NANO: u64 = 1_000_000_000;
// SPIFFE caps IDs at 2048 bytes; anything longer is not an identity.
export const MAX_IDENTITY_BYTES: i32 = 2048;

// A backwards step smaller than this is two workers reading the clock a few
// microseconds apart (the other one wrote a later `last`): no refill, keep
// `last`. A bigger step is a real clock jump: rebase on it rather than freeze
// the bucket until the clock catches up.
const SKEW_NS: u64 = NANO;

export class Limit {
  constructor(readonly perSecond: u64, readonly burst: u64) {}
}

export class CallerRule {
  /** UTF-8 of `match`: identities are matched as the bytes the host hands over. */
  readonly bytes: ArrayBuffer;
  /**
   * `prefix` rules come from a trailing `*` in `match`; the rest match exactly.
   * `reserved` numbers the exact rules (0, 1, ...): each names one identity,
   * which gets a bucket of its own outside the shared slots; -1 for a prefix.
   */
  constructor(readonly match: string, readonly prefix: bool, readonly limit: Limit, readonly reserved: i32) {
    this.bytes = String.UTF8.encode(match);
  }
}

/** The rule for `caller`: an exact rule first, then the longest matching prefix; null for the default. */
export function ruleForCaller(rules: CallerRule[], caller: HostBytes): CallerRule | null {
  let best: CallerRule | null = null;
  for (let i = 0; i < rules.length; i++) {
    const r = unchecked(rules[i]);
    if (r.prefix) {
      if (caller.startsWith(r.bytes) && (best === null || r.bytes.byteLength > best.bytes.byteLength)) best = r;
    } else if (caller.equals(r.bytes)) {
      return r;
    }
  }
  return best;
}

/**
 * The outcome of one take, and the bucket state to write back. One instance
 * per VM is filled in place (callbacks never interleave within a VM), so the
 * request path allocates nothing.
 */
export class Decision {
  allowed: bool = false;
  /** Whole tokens left after this request. */
  remaining: u64 = 0;
  /** Seconds until one token is available (0 when allowed). */
  retryAfter: u64 = 0;
  /** Seconds until the bucket is full again. */
  reset: u64 = 0;
  /** State to write back: nano-tokens, last refill ns, full-at ns. */
  tokens: u64 = 0;
  last: u64 = 0;
  fullAt: u64 = 0;
  /** False when nothing changed (a denial on a steady clock): skip the write. */
  store: bool = true;
}

function ceilDiv(a: u64, b: u64): u64 { return a == 0 ? 0 : (a - 1) / b + 1; }

/** Tokens in the bucket at `now`, never above capacity, never overflowing. */
export function refill(tokens: u64, last: u64, now: u64, limit: Limit): u64 {
  const cap = limit.burst * NANO;
  if (tokens >= cap) return cap;
  if (now <= last) return tokens;
  const elapsed = now - last;
  const missing = cap - tokens;
  if (elapsed >= ceilDiv(missing, limit.perSecond)) return cap;
  return tokens + elapsed * limit.perSecond;
}

/** The `last` to store: the later of the two, unless the clock truly went back. */
export function nextLast(last: u64, now: u64): u64 {
  if (now >= last) return now;
  return last - now > SKEW_NS ? now : last;
}

/**
 * Takes one token if there is one, filling `d`. `fresh` means a caller with no
 * bucket yet (full); otherwise the bucket holds `tokens` as of `prevLast`.
 */
export function take(d: Decision, fresh: bool, tokens0: u64, prevLast: u64, now: u64, limit: Limit): void {
  const cap = limit.burst * NANO;
  let tokens = fresh ? cap : refill(tokens0, prevLast, now, limit);
  const last = fresh ? now : nextLast(prevLast, now);
  d.allowed = false;
  d.retryAfter = 0;
  if (tokens >= NANO) {
    d.allowed = true;
    tokens -= NANO;
  } else {
    d.retryAfter = ceilDiv(ceilDiv(NANO - tokens, limit.perSecond), NANO);
  }
  const toFullNs = ceilDiv(cap - tokens, limit.perSecond);
  d.remaining = tokens / NANO;
  d.reset = ceilDiv(toFullNs, NANO);
  d.tokens = tokens;
  d.last = last;
  d.fullAt = last + toFullNs;
  // A denial changes nothing, unless the clock was rebased after a real jump back.
  d.store = d.allowed || fresh || last != prevLast;
}

/** FNV-1a over the identity's bytes: picks the caller's home slot. */
export function fnv1a(p: usize, len: i32): u32 {
  let h: u32 = 2166136261;
  for (let i = 0; i < len; i++) {
    h ^= load<u8>(p + i);
    h *= 16777619;
  }
  return h;
}
