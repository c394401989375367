import type { Verdict } from './authorizer.js';
import { toCheckResponse, type CheckResponse } from './check-response.js';
import type { PolicyDecision } from './decision.js';

/** At most this many end-user subjects' encodings per cached decision; beyond, a check is encoded as usual. */
const MAX_SUBJECTS = 64;

/**
 * CheckResponse bytes for cache hits that allow, encoded once per cached
 * decision instead of once per check: protobufjs encoding an allow (headers
 * and dynamic metadata) cost more than the rest of a cache hit together
 * (docs/benchmarks.md). Everything in such a response is fixed by the cache
 * entry (its key holds the whole policy input, so the caller, rule, tenant
 * and tier are those of every check that hits it) except the check's own
 * decision_id, and, for tokens, the subject (not in the policy input, so
 * kept apart per subject). So the response is kept as two pieces of
 * protobuf, everything but dynamic_metadata, and dynamic_metadata's map
 * entries but decision_id; each check writes the two with its own
 * decision_id entry added to the map: the same fields, in one
 * dynamic_metadata, as the one-piece encoding.
 *
 * The pieces are held beside the cache's own decision object, so they live
 * exactly as long as the entry: evicted, expired or of an older revision,
 * they go with it.
 */
export class EncodedAllows {
  private readonly bytes = new WeakMap<PolicyDecision, Map<string | null, Pieces>>();

  constructor(
    private readonly encode: (r: Partial<CheckResponse>) => Buffer,
    private readonly dryRun: boolean,
  ) {}

  /** The encoded response for `v`, or null when it is not a cache hit that allows (then encode as usual). */
  forHit(v: Verdict): Buffer | null {
    const decision = v.decision;
    if (!v.cacheHit || decision === undefined || !(v.allowed || this.dryRun) || v.decisionId.length > MAX_ID) return null;
    let bySubject = this.bytes.get(decision);
    if (bySubject === undefined) {
      bySubject = new Map();
      this.bytes.set(decision, bySubject);
    }
    const subject = v.subject;
    let fixed = bySubject.get(subject);
    if (fixed === undefined) {
      if (bySubject.size >= MAX_SUBJECTS) return null;
      fixed = this.pieces(toCheckResponse(v, this.dryRun, false));
      bySubject.set(subject, fixed);
    }
    return withDecisionId(fixed, v.decisionId);
  }

  private pieces(r: CheckResponse): Pieces {
    const { dynamic_metadata, ...rest } = r;
    const meta = this.encode({ dynamic_metadata });
    // meta is one field: its tag, its length (a varint), then the Struct, whose bytes are its map entries.
    let i = 1;
    while ((meta[i++]! & 0x80) !== 0);
    return { head: this.encode(rest), entries: meta.subarray(i) };
  }
}

/** Longest decision id the single-byte lengths below can carry (a UUID is 36). */
const MAX_ID = 100;
// CheckResponse.dynamic_metadata = 4, Struct.fields = 1 (map entry: key 1, value 2), Value.string_value = 3.
const TAG_DYNAMIC_METADATA = 0x22;
const TAG_FIELDS = 0x0a;
const TAG_KEY = 0x0a;
const TAG_VALUE = 0x12;
const TAG_STRING_VALUE = 0x1a;
const KEY = Buffer.from('decision_id', 'latin1');

/** A cached allow: the response without dynamic_metadata, and that Struct's map entries without decision_id. */
interface Pieces {
  readonly head: Buffer;
  readonly entries: Buffer;
}

function varintLength(n: number): number {
  let len = 1;
  while (n >= 0x80) {
    n >>>= 7;
    len++;
  }
  return len;
}

/** head, then dynamic_metadata { fields { key: "decision_id" value { string_value: id } }, the cached entries }. */
export function withDecisionId(p: Pieces, id: string): Buffer {
  const value = 2 + id.length;
  const entry = 2 + KEY.length + 2 + value;
  let struct = 2 + entry + p.entries.length;
  const out = Buffer.allocUnsafe(p.head.length + 1 + varintLength(struct) + struct);
  p.head.copy(out, 0);
  let i = p.head.length;
  out[i++] = TAG_DYNAMIC_METADATA;
  for (; struct >= 0x80; struct >>>= 7) out[i++] = (struct & 0x7f) | 0x80;
  out[i++] = struct;
  out[i++] = TAG_FIELDS;
  out[i++] = entry;
  out[i++] = TAG_KEY;
  out[i++] = KEY.length;
  KEY.copy(out, i);
  i += KEY.length;
  out[i++] = TAG_VALUE;
  out[i++] = value;
  out[i++] = TAG_STRING_VALUE;
  out[i++] = id.length;
  i += out.write(id, i, 'latin1');
  p.entries.copy(out, i);
  return out;
}
