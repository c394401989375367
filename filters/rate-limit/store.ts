// Buckets in Envoy shared data, visible to every worker's VM. Envoy can never
// delete a shared-data key, so callers live in a fixed table of `maxCallers`
// slots (keys "<prefix><n>"): memory is bounded by construction, however many
// identities show up. A caller's bucket sits in one of PROBES slots after its
// hash; a slot whose bucket has refilled to full and whose caller has taken no
// token for `idleNs` is idle and is reclaimed by the next caller that needs a
// slot. Callers that find no slot share one overflow bucket with the default
// limit. Each identity named by an exact `callers` rule has a reserved bucket
// of its own instead (key "<reservedPrefix><identity>"), which no other
// identity can take: the config bounds how many there are.
//
// Slot value: u64 nano-tokens | u64 last refill ns | u64 full-at ns | identity bytes.
// Reserved and overflow values: the same three u64, no identity.
//
// The request path allocates no GC object: keys and values are rendered into
// per-table scratch buffers, values the host returns are read in place (then
// freed), and the outcome is written into one Decision reused per VM.
import { getSharedDataBytes, setSharedDataRaw, sharedCas, HostBytes } from "../shared/host";
import { Status } from "../shared/status";
import { CallerRule, Decision, Limit, take, fnv1a, MAX_IDENTITY_BYTES } from "./logic";

const HEADER: i32 = 24;
const PROBES: u32 = 8;
// Envoy inserts a missing key whatever CAS we pass, but checks a non-zero CAS
// if the key appeared meanwhile, so this turns "create" into "create if absent"
// (it only fails to if the key's CAS is exactly this value at that instant).
const CREATE_CAS: u32 = u32.MAX_VALUE;
// u32 slot numbers have at most 10 decimal digits.
const MAX_DIGITS: i32 = 10;

export const enum Outcome { Decided, Contention, HostError }

export class BucketTable {
  /** Filled by take() when it returns Decided. */
  readonly decision: Decision = new Decision();
  /** Set by take(): the request was charged to the shared overflow bucket. */
  overflow: bool = false;

  private readonly prefixLen: i32;
  private readonly key: ArrayBuffer;
  private readonly overflowKey: ArrayBuffer;
  /** Keys of the reserved buckets, indexed by CallerRule.reserved, rendered once. */
  private readonly reservedKeys: ArrayBuffer[] = [];
  private readonly value: ArrayBuffer = new ArrayBuffer(HEADER + MAX_IDENTITY_BYTES);
  private readonly got: HostBytes = new HostBytes();

  constructor(readonly prefix: string, readonly slots: u32, readonly idleNs: u64, reservedPrefix: string, rules: CallerRule[], readonly maxRetries: i32) {
    const p = String.UTF8.encode(prefix);
    const key = new ArrayBuffer(p.byteLength + MAX_DIGITS);
    memory.copy(changetype<usize>(key), changetype<usize>(p), p.byteLength);
    this.prefixLen = p.byteLength;
    this.key = key;
    this.overflowKey = String.UTF8.encode(prefix + "overflow");
    const rp = String.UTF8.encode(reservedPrefix);
    for (let i = 0; i < rules.length; i++) {
      const r = unchecked(rules[i]);
      if (r.reserved < 0) continue;
      // The identity's own bytes, as matched: stable across edits that reorder or add rules.
      const k = new ArrayBuffer(rp.byteLength + r.bytes.byteLength);
      memory.copy(changetype<usize>(k), changetype<usize>(rp), rp.byteLength);
      memory.copy(changetype<usize>(k) + rp.byteLength, changetype<usize>(r.bytes), r.bytes.byteLength);
      this.reservedKeys.push(k); // exact rules are numbered in order, so this is index r.reserved
    }
  }

  /** Renders "<prefix><slot>" into the key buffer; returns its length. */
  private slotKey(slot: u32): i32 {
    let n = 1;
    for (let v = slot; v >= 10; v /= 10) n++;
    const base = changetype<usize>(this.key) + this.prefixLen;
    let v = slot;
    for (let i = n - 1; i >= 0; i--) {
      store<u8>(base + i, <u8>(48 + v % 10));
      v /= 10;
    }
    return this.prefixLen + n;
  }

  /** Encodes the decision's state and `identity` into the value buffer; returns its length. */
  private encode(idPtr: usize, idLen: i32): i32 {
    const d = this.decision;
    const p = changetype<usize>(this.value);
    store<u64>(p, d.tokens);
    store<u64>(p, d.last, 8);
    store<u64>(p, d.fullAt, 16);
    memory.copy(p + HEADER, idPtr, idLen);
    return HEADER + idLen;
  }

  private ownedBy(idPtr: usize, idLen: i32): bool {
    const v = this.got;
    return v.len == HEADER + idLen && memory.compare(v.ptr + HEADER, idPtr, idLen) == 0;
  }

  /**
   * Takes a token from the bucket of the identity at `idPtr` (at most
   * MAX_IDENTITY_BYTES), retrying on CAS conflicts up to maxRetries.
   */
  take(idPtr: usize, idLen: i32, limit: Limit, overflowLimit: Limit, now: u64): Outcome {
    const outcome = this.takeSlot(idPtr, idLen, limit, overflowLimit, now);
    this.got.release();
    return outcome;
  }

  private takeSlot(idPtr: usize, idLen: i32, limit: Limit, overflowLimit: Limit, now: u64): Outcome {
    this.overflow = false;
    const d = this.decision;
    const got = this.got;
    const keyPtr = changetype<usize>(this.key);
    const home = fnv1a(idPtr, idLen) % this.slots;
    const probes = this.slots < PROBES ? this.slots : PROBES;
    for (let attempt = 0; attempt < this.maxRetries; attempt++) {
      let free = false;
      let freeSlot: u32 = 0;
      let freeCas: u32 = 0;
      let retry = false;
      for (let i: u32 = 0; i < probes; i++) {
        const slot = (home + i) % this.slots;
        const keyLen = this.slotKey(slot);
        const st = getSharedDataBytes(keyPtr, keyLen, got);
        const cas = sharedCas();
        if (st == Status.OK && this.ownedBy(idPtr, idLen)) {
          take(d, false, load<u64>(got.ptr), load<u64>(got.ptr, 8), now, limit);
          if (!d.store) return Outcome.Decided;
          const set = setSharedDataRaw(keyPtr, keyLen, changetype<usize>(this.value), this.encode(idPtr, idLen), cas);
          if (set == Status.OK) return Outcome.Decided;
          if (set != Status.CAS_MISMATCH) return Outcome.HostError;
          retry = true;
          break;
        }
        if (!free && this.reusable(st, now)) {
          free = true;
          freeSlot = slot;
          freeCas = st == Status.OK ? cas : CREATE_CAS;
        } else if (st != Status.OK && st != Status.NOT_FOUND) {
          return Outcome.HostError;
        }
      }
      if (retry) continue;
      if (!free) return this.takeOverflow(overflowLimit, now);
      take(d, true, 0, 0, now, limit);
      const set = setSharedDataRaw(keyPtr, this.slotKey(freeSlot), changetype<usize>(this.value), this.encode(idPtr, idLen), freeCas);
      if (set == Status.OK) return Outcome.Decided;
      if (set != Status.CAS_MISMATCH) return Outcome.HostError;
    }
    return Outcome.Contention;
  }

  /**
   * A slot another identity may take: empty, or its bucket is full again (as
   * good as new) and its caller has sent nothing for idleNs, so a caller
   * between two requests keeps its bucket.
   */
  private reusable(st: u32, now: u64): bool {
    if (st == Status.NOT_FOUND) return true;
    if (st != Status.OK) return false;
    const v = this.got;
    if (v.len < HEADER) return true;
    return load<u64>(v.ptr, 16) <= now && load<u64>(v.ptr, 8) + this.idleNs <= now;
  }

  private takeOverflow(limit: Limit, now: u64): Outcome {
    this.overflow = true;
    return this.takeKey(this.overflowKey, limit, now);
  }

  /** Takes a token from the reserved bucket of exact rule `reserved` (CallerRule.reserved). */
  takeReserved(reserved: i32, limit: Limit, now: u64): Outcome {
    this.overflow = false;
    const outcome = this.takeKey(unchecked(this.reservedKeys[reserved]), limit, now);
    this.got.release();
    return outcome;
  }

  /** Takes a token from the single bucket at `k` (no identity stored, no probing). */
  private takeKey(k: ArrayBuffer, limit: Limit, now: u64): Outcome {
    const d = this.decision;
    const got = this.got;
    const key = changetype<usize>(k);
    const keyLen = k.byteLength;
    for (let attempt = 0; attempt < this.maxRetries; attempt++) {
      const st = getSharedDataBytes(key, keyLen, got);
      const cas = sharedCas();
      if (st != Status.OK && st != Status.NOT_FOUND) return Outcome.HostError;
      const fresh = st == Status.NOT_FOUND || got.len < HEADER;
      take(d, fresh, fresh ? 0 : load<u64>(got.ptr), fresh ? 0 : load<u64>(got.ptr, 8), now, limit);
      if (!d.store) return Outcome.Decided;
      const set = setSharedDataRaw(key, keyLen, changetype<usize>(this.value), this.encode(0, 0), st == Status.OK ? cas : CREATE_CAS);
      if (set == Status.OK) return Outcome.Decided;
      if (set != Status.CAS_MISMATCH) return Outcome.HostError;
    }
    return Outcome.Contention;
  }
}
