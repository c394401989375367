import { describe, expect, it } from 'vitest';
import { Metrics, PEER_URI_SAN, ProxyWasmHost, SharedData, header, type Headers, type Stream } from './host.js';
import { builtFilter } from './built.js';

const WASM = builtFilter('rate-limit');
const GATEWAY = 'spiffe://cluster.local/ns/gateway/sa/api-gateway';
const BATCH = 'spiffe://cluster.local/ns/batch/sa/nightly';
const APP = 'spiffe://cluster.local/ns/app/sa/web';
const OTHER = 'spiffe://cluster.local/ns/app/sa/other';
const SEC = 1_000_000_000n;

const CONFIG = {
  identity: 'peer_certificate',
  default: { perSecond: 2, burst: 4 },
  callers: [
    { match: GATEWAY, perSecond: 500, burst: 1000 },
    { match: 'spiffe://cluster.local/ns/batch/*', perSecond: 1, burst: 3 },
  ],
  unauthenticated: 'deny',
  maxCallers: 100,
};

function filter(config: unknown = CONFIG, opts: ConstructorParameters<typeof ProxyWasmHost>[1] = {}): ProxyWasmHost {
  const host = new ProxyWasmHost(WASM, opts);
  expect(host.configure(config)).toBe(true);
  return host;
}

const GET: Headers = [[':method', 'POST'], [':path', '/v1/models/bert:predict']];
const from = (host: ProxyWasmHost, caller: string | null, headers: Headers = GET) =>
  host.request(headers, [], caller === null ? {} : { [PEER_URI_SAN]: caller });
const statuses = (host: ProxyWasmHost, caller: string, n: number) =>
  Array.from({ length: n }, () => from(host, caller).localReply?.status ?? 200);

describe('rate-limit: one caller bursting', () => {
  it('lets the burst through, then answers 429 with retry-after and x-ratelimit-* headers', () => {
    const host = filter();
    const allowed = Array.from({ length: 4 }, () => from(host, APP));
    expect(allowed.map((s) => s.localReply)).toEqual([null, null, null, null]);
    // allowed responses carry the budget left
    expect(allowed.map((s) => header(s.responseHeaders, 'x-ratelimit-remaining'))).toEqual(['3', '2', '1', '0']);
    expect(header(allowed[0]!.responseHeaders, 'x-ratelimit-limit')).toBe('4');
    expect(header(allowed[3]!.responseHeaders, 'x-ratelimit-reset')).toBe('2'); // 4 tokens at 2/s

    const denied = from(host, APP).localReply!;
    expect(denied.status).toBe(429);
    expect(denied.grpcStatus).toBe(-1);
    expect(JSON.parse(denied.body)).toEqual({ code: 'rate_limited', retryAfter: 1 });
    expect(Object.fromEntries(denied.headers)).toEqual({
      'retry-after': '1',
      'x-ratelimit-limit': '4',
      'x-ratelimit-remaining': '0',
      'x-ratelimit-reset': '2',
      'content-type': 'application/json',
    });
  });

  it('with budgetHeaders false, adds nothing to allowed responses, and still sends the budget with a 429', () => {
    const host = filter({ ...CONFIG, budgetHeaders: false });
    const allowed = Array.from({ length: 4 }, () => from(host, APP));
    expect(allowed.map((s) => s.localReply)).toEqual([null, null, null, null]);
    expect(allowed.map((s) => s.responseHeaders)).toEqual(Array(4).fill([[':status', '200']]));
    const denied = from(host, APP).localReply!;
    expect(denied.status).toBe(429);
    expect(header(denied.headers, 'x-ratelimit-limit')).toBe('4');
    expect(header(denied.headers, 'x-ratelimit-remaining')).toBe('0');
    // true is the default, spelt out
    expect(header(from(filter({ ...CONFIG, budgetHeaders: true }), APP).responseHeaders, 'x-ratelimit-remaining')).toBe('3');
  });

  it('leaves a second caller its own full budget', () => {
    const host = filter();
    expect(statuses(host, APP, 6)).toEqual([200, 200, 200, 200, 429, 429]);
    expect(statuses(host, OTHER, 4)).toEqual([200, 200, 200, 200]);
  });

  it('applies exact caller rules, then the longest matching prefix, then the default', () => {
    const host = filter();
    expect(statuses(host, GATEWAY, 50).every((s) => s === 200)).toBe(true);
    expect(statuses(host, BATCH, 4)).toEqual([200, 200, 200, 429]);
    expect(statuses(host, 'spiffe://cluster.local/ns/batchy/sa/x', 5)).toEqual([200, 200, 200, 200, 429]);
  });

  it('answers gRPC callers with RESOURCE_EXHAUSTED', () => {
    const host = filter();
    statuses(host, APP, 4);
    const reply = from(host, APP, [...GET, ['content-type', 'application/grpc']]).localReply!;
    expect(reply).toMatchObject({ status: 429, grpcStatus: 8 });
    expect(header(reply.headers, 'retry-after')).toBe('1');
  });
});

describe('rate-limit: refill on a monotonic clock', () => {
  it('refills at perSecond and never above burst', () => {
    const host = filter();
    expect(statuses(host, APP, 5)).toEqual([200, 200, 200, 200, 429]);
    host.clock.now += SEC / 2n; // one token at 2/s
    expect(statuses(host, APP, 2)).toEqual([200, 429]);
    host.clock.now += 3600n * SEC;
    expect(statuses(host, APP, 5)).toEqual([200, 200, 200, 200, 429]);
  });

  it('survives the clock going backwards: no refill, no overflow, and refill resumes from the new reading', () => {
    const host = filter();
    expect(statuses(host, APP, 5)).toEqual([200, 200, 200, 200, 429]);
    host.clock.now -= 100n * SEC;
    expect(statuses(host, APP, 2)).toEqual([429, 429]);
    host.clock.now += SEC;
    expect(statuses(host, APP, 3)).toEqual([200, 200, 429]);
  });

  it('does not refill from a small backwards step (two workers reading the clock microseconds apart)', () => {
    const host = filter();
    statuses(host, APP, 4);
    host.clock.now -= 1000n;
    expect(statuses(host, APP, 1)).toEqual([429]);
    host.clock.now += 1000n;
    expect(statuses(host, APP, 1)).toEqual([429]);
  });
});

describe('rate-limit: one budget across worker VMs (shared data with CAS)', () => {
  function workers(n: number, config: unknown = CONFIG) {
    const shared = new SharedData();
    const metrics = new Metrics();
    const clock = { now: 5n * SEC };
    return Array.from({ length: n }, () => filter(config, { shared, metrics, clock }));
  }

  it('counts requests spread over two workers against one bucket', () => {
    const [a, b] = workers(2) as [ProxyWasmHost, ProxyWasmHost];
    const results = Array.from({ length: 8 }, (_, i) => from(i % 2 ? a : b, APP).localReply?.status ?? 200);
    expect(results.filter((s) => s === 200)).toHaveLength(4);
    a.tick();
    b.tick();
    expect(a.metrics.value('infergate.rate_limit.allowed')).toBe(4);
    expect(a.metrics.value('infergate.rate_limit.rejected')).toBe(4);
  });

  it('retries when another worker wrote in between, and never spends a token twice', () => {
    const [a, b] = workers(2) as [ProxyWasmHost, ProxyWasmHost];
    from(a, APP); // the bucket exists (3 left)
    let interleaved = 0;
    a.shared.beforeSet = () => {
      if (interleaved++ === 0) {
        a.shared.beforeSet = null;
        expect(from(b, APP).localReply).toBeNull(); // worker b takes a token mid-way through a's update
      }
    };
    expect(from(a, APP).localReply).toBeNull();
    expect(interleaved).toBe(1);
    expect(statuses(a, APP, 2)).toEqual([200, 429]); // 4 - a - b - a = 1 left
  });

  /** Another writer touches the key just before each of our writes, so every CAS loses. */
  function contend(shared: SharedData): void {
    const bump = (key: string) => {
      const e = shared.get(key);
      shared.beforeSet = null;
      if (e) shared.set(key, e.value, 0);
      shared.beforeSet = bump;
    };
    shared.beforeSet = bump;
  }

  it('counts a caller with a bucket of its own (an exact rule) exactly across workers too: CAS retries, never a token spent twice', () => {
    const config = { ...CONFIG, callers: [{ match: APP, perSecond: 2, burst: 4 }] };
    const [a, b] = workers(2, config) as [ProxyWasmHost, ProxyWasmHost];
    from(a, APP); // the reserved bucket exists (3 left)
    let interleaved = 0;
    a.shared.beforeSet = () => {
      if (interleaved++ === 0) {
        a.shared.beforeSet = null;
        expect(from(b, APP).localReply).toBeNull();
      }
    };
    expect(from(a, APP).localReply).toBeNull();
    expect(interleaved).toBe(1);
    expect(statuses(b, APP, 2)).toEqual([200, 429]);
    // and persistent contention on it fails closed, as for any bucket
    a.clock.now += SEC; // two tokens again: this take writes
    contend(a.shared);
    const reply = from(a, APP).localReply;
    a.shared.beforeSet = null;
    expect(JSON.parse(reply!.body)).toEqual({ code: 'rate_limit_unavailable' });
    expect(a.metrics.value('infergate.rate_limit.errors')).toBe(1);
  });

  it('fails closed on persistent contention, counting an error', () => {
    const [a] = workers(1) as [ProxyWasmHost];
    from(a, APP);
    contend(a.shared);
    const reply = from(a, APP).localReply;
    a.shared.beforeSet = null;
    expect(reply?.status).toBe(429);
    expect(JSON.parse(reply!.body)).toEqual({ code: 'rate_limit_unavailable' });
    expect(header(reply!.headers, 'retry-after')).toBe('1');
    expect(a.metrics.value('infergate.rate_limit.errors')).toBe(1);
    expect(a.logs.some((l) => l.message.includes('contention; failing closed'))).toBe(true);
  });

  it('lets the request through on persistent contention when failureMode is allow', () => {
    const [a] = workers(1, { ...CONFIG, failureMode: 'allow' }) as [ProxyWasmHost];
    expect(header(from(a, APP).responseHeaders, 'x-ratelimit-remaining')).toBe('3');
    contend(a.shared);
    const s = from(a, APP);
    a.shared.beforeSet = null;
    expect(s.localReply).toBeNull();
    // No budget to report; the recycled stream context must not echo the previous request's.
    expect(header(s.responseHeaders, 'x-ratelimit-remaining')).toBeUndefined();
    expect(a.metrics.value('infergate.rate_limit.errors')).toBe(1);
  });
});

describe('rate-limit: bounded number of tracked callers', () => {
  const small = { ...CONFIG, maxCallers: 4 };

  it('keeps at most maxCallers buckets (+1 overflow, +1 per exact rule) in shared data, however many identities arrive', () => {
    const host = filter(small);
    for (let i = 0; i < 200; i++) {
      from(host, `spiffe://cluster.local/ns/flood/sa/${i}`);
      from(host, GATEWAY);
    }
    const keys = host.shared.keys();
    expect(keys.length).toBeLessThanOrEqual(4 + 1 + 1);
    expect(keys.filter((k) => k.endsWith('overflow'))).toHaveLength(1);
    expect(keys.filter((k) => k.includes('.caller.'))).toEqual([`infergate.rl.test_plugin.caller.${GATEWAY}`]);
  });

  it('puts callers that find no slot in one overflow bucket under the default limit', () => {
    const host = filter({ ...small, default: { perSecond: 1, burst: 3 } });
    for (let i = 0; i < 4; i++) from(host, `spiffe://cluster.local/ns/flood/sa/${i}`);
    const overflow = Array.from({ length: 5 }, (_, i) => from(host, `spiffe://cluster.local/ns/new/sa/${i}`).localReply?.status ?? 200);
    expect(overflow).toEqual([200, 200, 200, 429, 429]);
  });

  it('reclaims idle (refilled) buckets for new callers', () => {
    const host = filter(small);
    for (let i = 0; i < 4; i++) from(host, `spiffe://cluster.local/ns/flood/sa/${i}`);
    host.clock.now += 10n * SEC; // every bucket is full again: idle
    for (let i = 0; i < 4; i++) expect(statuses(host, `spiffe://cluster.local/ns/new/sa/${i}`, 4)).toEqual([200, 200, 200, 200]);
    expect(statuses(host, 'spiffe://cluster.local/ns/new/sa/0', 1)).toEqual([429]);
  });
});

describe('rate-limit: an identity flood does not take the buckets of callers that are not busy', () => {
  // maxCallers below the probe count: every identity probes all four slots, so a flood fills them all.
  const small = { ...CONFIG, maxCallers: 4 };
  const flood = (host: ProxyWasmHost, tag: string, n = 40) => {
    for (let i = 0; i < n; i++) from(host, `spiffe://cluster.local/ns/flood/sa/${tag}-${i}`);
  };
  const limitOf = (s: Stream) => (s.localReply === null ? header(s.responseHeaders, 'x-ratelimit-limit') : header(s.localReply.headers, 'x-ratelimit-limit'));

  it('gives a caller named by an exact rule a bucket of its own, which a flood cannot reclaim however long it is idle', () => {
    // idleSeconds 0: nothing but the reserved bucket protects it
    const host = filter({ ...small, idleSeconds: 0 });
    expect(from(host, GATEWAY).localReply).toBeNull();
    host.clock.now += 60n * SEC; // full again and silent for a minute
    flood(host, 'a'); // fills the four shared slots, then drains the overflow bucket (default burst 4)
    const s = from(host, GATEWAY);
    expect(s.localReply).toBeNull();
    expect(limitOf(s)).toBe('1000'); // its own limit, not the overflow's default (4)
    expect(header(s.responseHeaders, 'x-ratelimit-remaining')).toBe('999');
  });

  it('keeps a shared slot for a caller between two requests (idleSeconds), and frees it once the caller has been silent that long', () => {
    const host = filter({ ...small, idleSeconds: 5 });
    expect(from(host, BATCH).localReply).toBeNull();
    host.clock.now += 2n * SEC; // its bucket is full again (1/s, burst 3), but it sent a request 2 s ago
    flood(host, 'a');
    const kept = from(host, BATCH);
    expect(kept.localReply).toBeNull();
    expect(limitOf(kept)).toBe('3'); // its prefix rule's limit
    expect(header(kept.responseHeaders, 'x-ratelimit-remaining')).toBe('2');

    host.clock.now += 6n * SEC; // silent for longer than idleSeconds: the slot may go to another identity
    flood(host, 'b');
    const lost = from(host, BATCH).localReply!;
    expect(lost.status).toBe(429); // charged to the overflow bucket, drained by flood b
    expect(header(lost.headers, 'x-ratelimit-limit')).toBe('4');
  });

  it('with idleSeconds 0, gives a slot away as soon as its bucket is full (the scenario above, unprotected)', () => {
    const host = filter({ ...small, idleSeconds: 0 });
    expect(from(host, BATCH).localReply).toBeNull();
    host.clock.now += 2n * SEC;
    flood(host, 'a');
    const lost = from(host, BATCH).localReply!;
    expect(lost.status).toBe(429);
    expect(header(lost.headers, 'x-ratelimit-limit')).toBe('4');
  });

  it('by default (idleSeconds 1) keeps the slot of a caller sending every 200 ms under a fast limit', () => {
    // refilled to full 20 ms after each request at 50/s: without idleSeconds it would be reclaimable 90% of the time
    const host = filter({ ...small, callers: [{ match: 'spiffe://cluster.local/ns/partner/*', perSecond: 50, burst: 10 }] });
    const partner = 'spiffe://cluster.local/ns/partner/sa/paced';
    for (let round = 0; round < 10; round++) {
      const s = from(host, partner);
      expect(s.localReply).toBeNull();
      expect(limitOf(s)).toBe('10');
      host.clock.now += SEC / 5n;
      flood(host, `r${round}`, 10);
    }
  });

  it('keeps a reserved bucket\'s state when the rules are reordered or the table resized (keyed by its identity)', () => {
    const shared = new SharedData();
    const clock = { now: 5n * SEC };
    const gateway = { match: GATEWAY, perSecond: 1, burst: 2 };
    const before = filter({ ...CONFIG, callers: [gateway] }, { shared, clock });
    expect(statuses(before, GATEWAY, 3)).toEqual([200, 200, 429]);
    // a configuration update: another rule first, a bigger table
    const after = filter({ ...CONFIG, maxCallers: 500, callers: [{ match: APP, perSecond: 1, burst: 1 }, gateway] }, { shared, clock });
    expect(statuses(after, GATEWAY, 1)).toEqual([429]); // the same bucket, still empty: no fresh burst
  });
});

describe('rate-limit: caller identity', () => {
  it('denies a request without a peer certificate SAN (unauthenticated: deny)', () => {
    const host = filter();
    const reply = from(host, null).localReply!;
    expect(reply.status).toBe(403);
    expect(JSON.parse(reply.body)).toEqual({ code: 'caller_unidentified' });
  });

  it('reads the SAN only through the NUL-joined property path', () => {
    const host = filter();
    const s = host.request(GET, [], { 'connection.uri_san_peer_certificate': APP });
    expect(s.localReply?.status).toBe(403);
  });

  it('limits unauthenticated requests together when unauthenticated is allow', () => {
    const host = filter({ ...CONFIG, unauthenticated: 'allow' });
    expect(Array.from({ length: 5 }, () => from(host, null).localReply?.status ?? 200)).toEqual([200, 200, 200, 200, 429]);
  });

  it('can key on a header set by ext_authz instead of the certificate', () => {
    const host = filter({ ...CONFIG, identity: 'header:X-Infergate-Caller' });
    const withHeader = (caller: string) => host.request([...GET, ['x-infergate-caller', caller]], [], { [PEER_URI_SAN]: APP }).localReply?.status ?? 200;
    expect(Array.from({ length: 4 }, () => withHeader(BATCH))).toEqual([200, 200, 200, 429]);
    expect(withHeader(OTHER)).toBe(200);
  });
});

describe('rate-limit: configuration is validated strictly', () => {
  const base = { identity: 'peer_certificate', default: { perSecond: 1, burst: 1 } };
  it.each([
    ['an unknown key', { ...base, limit: 1 }, 'unknown key "limit"'],
    ['a missing identity', { default: base.default }, 'identity is required'],
    ['an unknown identity source', { ...base, identity: 'jwt' }, 'identity must be'],
    ['an empty header name', { ...base, identity: 'header:' }, 'identity must be'],
    ['a missing default', { identity: 'peer_certificate' }, 'default must be an object'],
    ['a zero rate', { ...base, default: { perSecond: 0, burst: 1 } }, 'perSecond must be an integer'],
    ['a missing burst', { ...base, default: { perSecond: 1 } }, 'default.burst is required'],
    ['an unknown key in a limit', { ...base, default: { perSecond: 1, burst: 1, per: 's' } }, 'unknown key "per"'],
    ['a caller without match', { ...base, callers: [{ perSecond: 1, burst: 1 }] }, 'callers[0].match is required'],
    ['a wildcard in the middle', { ...base, callers: [{ match: 'spiffe://*/ns/a', perSecond: 1, burst: 1 }] }, 'trailing *'],
    ['a bad unauthenticated mode', { ...base, unauthenticated: 'maybe' }, 'unauthenticated must be one of deny, allow'],
    ['a bad failure mode', { ...base, failureMode: 'open' }, 'failureMode must be one of deny, allow'],
    ['zero maxCallers', { ...base, maxCallers: 0 }, 'maxCallers must be an integer'],
    ['two rules for the same identity', { ...base, callers: [{ match: APP, perSecond: 1, burst: 1 }, { match: OTHER, perSecond: 1, burst: 1 }, { match: APP, perSecond: 2, burst: 2 }] },
      'configuration.callers[2].match repeats callers[0].match'],
    ['two rules for the same prefix', { ...base, callers: [{ match: 'spiffe://a/*', perSecond: 1, burst: 1 }, { match: 'spiffe://a/*', perSecond: 2, burst: 2 }] },
      'configuration.callers[1].match repeats callers[0].match'],
    ['a match no identity can be', { ...base, callers: [{ match: `spiffe://a/${'x'.repeat(2040)}`, perSecond: 1, burst: 1 }] },
      'configuration.callers[0].match is longer than 2048 bytes, the longest identity'],
    ['more buckets than the bound', { ...base, maxCallers: 999_999, callers: [{ match: APP, perSecond: 1, burst: 1 }, { match: OTHER, perSecond: 1, burst: 1 }] },
      'configuration.maxCallers (999999) plus one bucket for each of the 2 exact callers rules must be at most 1000000'],
    ['a negative idleSeconds', { ...base, idleSeconds: -1 }, 'configuration.idleSeconds must be an integer from 0 to 3600'],
    ['a fractional idleSeconds', { ...base, idleSeconds: 0.5 }, 'configuration.idleSeconds must be an integer from 0 to 3600'],
    ['an idleSeconds over an hour', { ...base, idleSeconds: 3601 }, 'configuration.idleSeconds must be an integer from 0 to 3600'],
    ['a budgetHeaders that is not a boolean', { ...base, budgetHeaders: 'off' }, 'configuration.budgetHeaders must be true or false'],
    ['not JSON', 'identity=peer_certificate', 'not valid JSON'],
  ])('rejects %s and logs why', (_name, config, reason) => {
    const host = new ProxyWasmHost(WASM);
    expect(host.configure(config)).toBe(false);
    const errors = host.logs.filter((l) => l.level === 4).map((l) => l.message);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toContain('rate-limit: rejecting configuration');
    expect(errors[0]).toContain(reason);
  });
});
