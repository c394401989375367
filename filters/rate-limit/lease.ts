// Per-VM token leases. Shared data is the dear part of a rate-limit decision
// (a host round trip under Envoy's global lock, and a CAS write), so a worker
// that finds plenty of tokens takes a few extra for the same caller's next
// requests and serves those without touching shared data.
//
// What this keeps exact: leased tokens leave the shared bucket when leased, so
// all workers together never admit more than one bucket allows; a lease is
// usable for LEASE_TTL_NS and then goes back into the bucket (capped at its
// burst), so an idle caller cannot bank tokens past its burst. What it gives
// up, only far from the limit: another worker may see fewer tokens than the
// caller holds in total. Leases are sized as a small share of what is left
// (see take() in logic.ts), so near the limit they are zero and every request
// is decided on the shared bucket.
import { Limit, fnv1a } from "./logic";

export const LEASE_TTL_NS: u64 = 1_000_000_000;
// Direct-mapped by identity hash: a collision evicts (and gives back) the older lease.
const LEASE_SLOTS: u32 = 64;

export class Lease {
  private id: ArrayBuffer = new ArrayBuffer(0);
  idLen: i32 = 0;
  /** Null when the entry holds no lease. */
  limit: Limit | null = null;
  /** Whole tokens left to hand out. */
  left: u64 = 0;
  expires: u64 = 0;
  /** The caller's bucket right after the lease was taken: nano-tokens and its time. */
  tokens: u64 = 0;
  last: u64 = 0;

  get idPtr(): usize { return changetype<usize>(this.id); }

  holds(ptr: usize, len: i32, limit: Limit): bool {
    const l = this.limit;
    return l !== null && changetype<usize>(l) == changetype<usize>(limit) &&
      this.idLen == len && memory.compare(changetype<usize>(this.id), ptr, <usize>len) == 0;
  }

  /** Copies the identity: the host's buffer is freed after the callback. */
  fill(ptr: usize, len: i32, limit: Limit, left: u64, expires: u64, tokens: u64, last: u64): void {
    if (this.id.byteLength < len) this.id = new ArrayBuffer(len);
    memory.copy(changetype<usize>(this.id), ptr, <usize>len);
    this.idLen = len;
    this.limit = limit;
    this.left = left;
    this.expires = expires;
    this.tokens = tokens;
    this.last = last;
  }

  clear(): void {
    this.limit = null;
    this.left = 0;
  }
}

export class LeaseTable {
  readonly entries: Lease[] = [];

  constructor() {
    for (let i: u32 = 0; i < LEASE_SLOTS; i++) this.entries.push(new Lease());
  }

  /** The one entry the identity can occupy (it may hold another caller's lease). */
  slot(ptr: usize, len: i32): Lease {
    return unchecked(this.entries[fnv1a(ptr, len) % LEASE_SLOTS]);
  }
}
