// Buckets in Envoy shared data, visible to every worker's VM. Envoy can never
// delete a shared-data key, so callers live in a fixed table of `maxCallers`
// slots (keys "<prefix><n>"): memory is bounded by construction, however many
// identities show up. A caller's bucket sits in one of PROBES slots after its
// hash; a slot whose bucket has refilled to full is idle — indistinguishable
// from a fresh bucket — and is reclaimed by the next caller that needs a slot.
// Callers that find no slot share one overflow bucket with the default limit.
//
// Slot value: u64 nano-tokens | u64 last refill ns | u64 full-at ns | identity bytes.
import { getSharedData, setSharedData, SharedValue } from "../shared/host";
import { Status } from "../shared/status";
import { BucketState, Decision, Limit, take, fnv1a } from "./logic";

const HEADER: i32 = 24;
const PROBES: u32 = 8;
// Envoy inserts a missing key whatever CAS we pass, but checks a non-zero CAS
// if the key appeared meanwhile, so this turns "create" into "create if absent"
// (it only fails to if the key's CAS is exactly this value at that instant).
const CREATE_CAS: u32 = u32.MAX_VALUE;

export const enum Outcome { Decided, Contention, HostError }

export class TakeResult {
  constructor(readonly outcome: Outcome, readonly decision: Decision | null, readonly overflow: bool) {}
}

function encode(state: BucketState, identity: ArrayBuffer): ArrayBuffer {
  const out = new ArrayBuffer(HEADER + identity.byteLength);
  const p = changetype<usize>(out);
  store<u64>(p, state.tokens);
  store<u64>(p, state.last, 8);
  store<u64>(p, state.fullAt, 16);
  memory.copy(p + HEADER, changetype<usize>(identity), identity.byteLength);
  return out;
}

function ownedBy(v: ArrayBuffer, identity: ArrayBuffer): bool {
  if (v.byteLength != HEADER + identity.byteLength) return false;
  return memory.compare(changetype<usize>(v) + HEADER, changetype<usize>(identity), identity.byteLength) == 0;
}

function stateOf(v: ArrayBuffer): BucketState {
  const p = changetype<usize>(v);
  return new BucketState(load<u64>(p), load<u64>(p, 8), load<u64>(p, 16));
}

export class BucketTable {
  private readonly overflowKey: ArrayBuffer;
  private readonly overflowIdentity: ArrayBuffer = new ArrayBuffer(0);

  constructor(readonly prefix: string, readonly slots: u32, readonly maxRetries: i32) {
    this.overflowKey = String.UTF8.encode(prefix + "overflow");
  }

  // Encoded keys are cached per VM: at most `slots` small buffers, and no
  // string building on the request path once a slot has been seen.
  private readonly keys: Map<u32, ArrayBuffer> = new Map();

  private slotKey(slot: u32): ArrayBuffer {
    if (this.keys.has(slot)) return this.keys.get(slot);
    const key = String.UTF8.encode(this.prefix + slot.toString());
    this.keys.set(slot, key);
    return key;
  }

  /** Takes a token from `identity`'s bucket, retrying on CAS conflicts up to maxRetries. */
  take(identity: ArrayBuffer, limit: Limit, overflowLimit: Limit, now: u64): TakeResult {
    const home = fnv1a(identity) % this.slots;
    const probes = this.slots < PROBES ? this.slots : PROBES;
    for (let attempt = 0; attempt < this.maxRetries; attempt++) {
      let freeKey: ArrayBuffer | null = null;
      let freeCas: u32 = 0;
      let retry = false;
      for (let i: u32 = 0; i < probes; i++) {
        const key = this.slotKey((home + i) % this.slots);
        const v = getSharedData(key);
        if (v.status == Status.OK && ownedBy(v.bytes, identity)) {
          const d = take(stateOf(v.bytes), now, limit);
          if (!d.store) return new TakeResult(Outcome.Decided, d, false);
          const st = setSharedData(key, encode(d.state, identity), v.cas);
          if (st == Status.OK) return new TakeResult(Outcome.Decided, d, false);
          if (st != Status.CAS_MISMATCH) return new TakeResult(Outcome.HostError, null, false);
          retry = true;
          break;
        }
        if (freeKey === null && this.reusable(v, now)) {
          freeKey = key;
          freeCas = v.status == Status.OK ? v.cas : CREATE_CAS;
        } else if (v.status != Status.OK && v.status != Status.NOT_FOUND) {
          return new TakeResult(Outcome.HostError, null, false);
        }
      }
      if (retry) continue;
      if (freeKey === null) return this.takeOverflow(overflowLimit, now);
      const d = take(null, now, limit);
      const st = setSharedData(freeKey, encode(d.state, identity), freeCas);
      if (st == Status.OK) return new TakeResult(Outcome.Decided, d, false);
      if (st != Status.CAS_MISMATCH) return new TakeResult(Outcome.HostError, null, false);
    }
    return new TakeResult(Outcome.Contention, null, false);
  }

  private reusable(v: SharedValue, now: u64): bool {
    if (v.status == Status.NOT_FOUND) return true;
    if (v.status != Status.OK) return false;
    if (v.bytes.byteLength < HEADER) return true;
    return stateOf(v.bytes).fullAt <= now;
  }

  private takeOverflow(limit: Limit, now: u64): TakeResult {
    for (let attempt = 0; attempt < this.maxRetries; attempt++) {
      const v = getSharedData(this.overflowKey);
      if (v.status != Status.OK && v.status != Status.NOT_FOUND) return new TakeResult(Outcome.HostError, null, true);
      const fresh = v.status == Status.NOT_FOUND || v.bytes.byteLength < HEADER;
      const d = take(fresh ? null : stateOf(v.bytes), now, limit);
      if (!d.store) return new TakeResult(Outcome.Decided, d, true);
      const st = setSharedData(this.overflowKey, encode(d.state, this.overflowIdentity), v.status == Status.OK ? v.cas : CREATE_CAS);
      if (st == Status.OK) return new TakeResult(Outcome.Decided, d, true);
      if (st != Status.CAS_MISMATCH) return new TakeResult(Outcome.HostError, null, true);
    }
    return new TakeResult(Outcome.Contention, null, true);
  }
}
