// The request headers a filter reads come from ONE proxy_get_header_map_pairs
// per request, parsed in the module (filters/shared/pairs.ts,
// filters/shared/request-headers.ts). These drive the built modules through
// the test host, including with serialized maps Envoy would never send: a
// malformed map must read as "no headers" (fail closed where a check needs
// one), never trap the VM.
import { describe, expect, it } from 'vitest';
import { ProxyWasmHost, header, serializePairs, type Headers, type Stream } from './host.js';
import { builtFilter } from './built.js';

const CALLER = 'spiffe://cluster.local/ns/gateway/sa/api-gateway';
const OTHER = 'spiffe://cluster.local/ns/app/sa/web';
const RATE = { identity: 'header:x-infergate-caller', default: { perSecond: 1, burst: 100 }, callers: [{ match: CALLER, perSecond: 1, burst: 1 }], maxCallers: 100 };
const PAYLOAD = { defaultMaxBytes: 1000, routes: [{ prefix: '/v2/models/', maxBytes: 4000 }] };

function guard(config: unknown = { rateLimit: RATE, payloadLimit: PAYLOAD }, module: 'guard' | 'guard-request-only' = 'guard'): ProxyWasmHost {
  const host = new ProxyWasmHost(builtFilter(module));
  expect(host.configure(config)).toBe(true);
  return host;
}

/** A request as a gateway's sidecar sees it: ~10 headers, the two the guard reads among them. */
function realistic(caller: string, bytes: number, path = '/v1/models/bert:predict'): Headers {
  return [
    [':authority', 'model-serving.ml.svc.cluster.local'], [':path', path], [':method', 'POST'], [':scheme', 'http'],
    ['content-type', 'application/json'], ['content-length', String(bytes)], ['user-agent', 'python-httpx/0.27'],
    ['x-request-id', '5b2f3c1e-8a4d-4c8e-9a61-0f3b2d7e9c10'], ['traceparent', '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'],
    ['x-forwarded-proto', 'http'], ['x-infergate-caller', caller],
  ];
}

/** Runs one request whose request-header map the host hands over as `raw` (bytes Envoy would not send). */
function withRawMap(host: ProxyWasmHost, raw: Uint8Array, chunks: number[] = []): Stream {
  const s = host.newStream(realistic(OTHER, 10));
  s.rawRequestPairs = raw;
  host.requestHeaders(s, chunks.length === 0);
  for (let i = 0; i < chunks.length && !s.localReply; i++) host.requestBody(s, chunks[i]!, i === chunks.length - 1);
  if (!s.localReply) host.responseHeaders(s, [[':status', '200']], true);
  host.finish(s);
  return s;
}

const u32 = (...words: number[]) => {
  const b = new Uint8Array(words.length * 4);
  words.forEach((w, i) => new DataView(b.buffer).setUint32(i * 4, w >>> 0, true));
  return b;
};
const concat = (...parts: Uint8Array[]) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
};
const text = (s: string) => new TextEncoder().encode(s);

describe('request headers: one host call per request', () => {
  for (const module of ['guard', 'guard-request-only'] as const) {
    it(`${module} reads the caller, content-length and :path with one proxy_get_header_map_pairs and no single-header read`, () => {
      const host = guard(module === 'guard' ? undefined : { rateLimit: { ...RATE, budgetHeaders: false }, payloadLimit: PAYLOAD }, module);
      const ok = host.request(realistic(OTHER, 1000), [1000]);
      expect(ok.localReply).toBeNull();
      expect(ok.requestPairsCalls).toBe(1);
      expect(ok.requestValueCalls).toBe(0);
      // the same single read finds content-length (413 before any body byte) and :path (the route's limit)
      const big = host.request(realistic(OTHER, 1001), [1001]);
      expect(big.localReply?.status).toBe(413);
      expect(big.actions).toHaveLength(1);
      expect(host.request(realistic(OTHER, 4000, '/v2/models/llama/infer'), [4000]).localReply).toBeNull();
      // a rejection that needs content-type too (gRPC or not) reads nothing more
      const grpc = realistic(OTHER, 1001).map(([k, v]): [string, string] => [k, k === 'content-type' ? 'application/grpc' : v]);
      const g = host.request(grpc, [1001]);
      expect(g.localReply?.grpcStatus).toBe(8);
      expect([g.requestPairsCalls, g.requestValueCalls]).toEqual([1, 0]);
    });
  }

  it('reads the first of repeated headers, as proxy_get_header_map_value does', () => {
    const host = guard();
    // CALLER has a budget of one; OTHER a hundred: whose bucket is charged tells which value was read
    const first = (a: string, b: string): Headers => [...realistic(a, 10), ['x-infergate-caller', b]];
    expect(host.request(first(CALLER, OTHER), [10]).localReply).toBeNull();
    const second = host.request(first(CALLER, OTHER), [10]);
    expect(second.localReply?.status).toBe(429);
    expect(header(second.localReply!.headers, 'x-ratelimit-limit')).toBe('1');
    expect(host.request(first(OTHER, CALLER), [10]).localReply).toBeNull();
  });

  it('matches names exactly: a longer or shorter name is another header', () => {
    const host = guard();
    const near = realistic(OTHER, 10).filter(([k]) => k !== 'x-infergate-caller');
    for (const name of ['x-infergate-caller-id', 'x-infergate-calle', 'X-Infergate-Caller']) {
      const s = host.request([...near, [name, CALLER]], [10]);
      expect(s.localReply?.status, name).toBe(403);
      expect(JSON.parse(s.localReply!.body)).toEqual({ code: 'caller_unidentified' });
    }
  });

  it('never reads a previous request\'s headers: the snapshot ends with the callback', () => {
    const host = guard();
    expect(host.request(realistic(OTHER, 10), [10]).localReply).toBeNull();
    const anonymous = host.request(realistic(OTHER, 10).filter(([k]) => k !== 'x-infergate-caller'), [10]);
    expect(anonymous.localReply?.status).toBe(403);
    const unsized = host.request(realistic(OTHER, 10).filter(([k]) => k !== 'content-length'), [1001]);
    expect(unsized.localReply?.status).toBe(413); // counted from the body, not a stale content-length of 10
    expect(unsized.actions).toHaveLength(2);
  });

  it('reads an empty map (zero bytes, or one NUL) as no headers', () => {
    for (const raw of [new Uint8Array(), new Uint8Array([0])]) {
      const s = withRawMap(guard(), raw);
      expect(s.localReply?.status).toBe(403);
    }
  });

  it('reads a well-formed map the host built by hand, empty keys and values included', () => {
    const host = guard();
    const raw = serializePairs([['', ''], ['content-length', '10'], ['x-infergate-caller', OTHER], ['x', '']]);
    const s = withRawMap(host, raw, [10]);
    expect(s.localReply).toBeNull();
    expect(header(s.responseHeaders, 'x-ratelimit-limit')).toBe('100');
  });

  describe('a malformed map reads as no headers, and the VM survives it', () => {
    // Each case spoils a map that does carry the caller: finding it anyway would let the request through.
    const good = serializePairs([['x-infergate-caller', OTHER], ['content-length', '10']]);
    const view = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, b.byteLength);
    const keyEnd = 4 + 16 + 'x-infergate-caller'.length; // the NUL after the first key
    const valueEnd = keyEnd + 1 + OTHER.length; // the NUL after its value
    const spoil = (f: (b: Uint8Array) => void) => { const b = good.slice(); f(b); return b; };
    const cases: Record<string, Uint8Array> = {
      'shorter than the count': new Uint8Array([2, 0, 0]),
      'a count the buffer could not hold': spoil((b) => view(b).setUint32(0, 0xffffffff, true)),
      'a count one more than the pairs': spoil((b) => view(b).setUint32(0, 3, true)),
      'a count one less than the pairs': spoil((b) => view(b).setUint32(0, 1, true)),
      'truncated by one byte': good.subarray(0, good.length - 1),
      'trailing bytes after the last pair': concat(good, new Uint8Array([0])),
      'a key length past the end': spoil((b) => view(b).setUint32(12, 0xfffffff0, true)),
      'a value length past the end': spoil((b) => view(b).setUint32(16, 0x7fffffff, true)),
      'lengths whose sum wraps 32 bits': spoil((b) => view(b).setUint32(16, 0xffffffff - 2, true)),
      'a key not followed by NUL': spoil((b) => { b[keyEnd] = 0x58; }),
      'a value not followed by NUL': spoil((b) => { b[valueEnd] = 0x58; }),
      'a map with no pairs but bytes after the count': concat(u32(0), text('x-infergate-caller\0' + OTHER + '\0')),
    };
    it('the unspoilt map lets the request through (so each case below tests its spoiling)', () => {
      expect(withRawMap(guard(), good, [10]).localReply).toBeNull();
    });
    for (const [what, raw] of Object.entries(cases)) {
      it(what, () => {
        const host = guard();
        const s = withRawMap(host, raw, [10]);
        // the identity is missing: the rate limit refuses (fail closed)
        expect(s.localReply?.status).toBe(403);
        // and the next, well-formed request is served as usual
        expect(host.request(realistic(OTHER, 10), [10]).localReply).toBeNull();
      });
    }

    it('the payload check then counts the body, as for a request without content-length', () => {
      const host = guard({ payloadLimit: PAYLOAD });
      const s = withRawMap(host, concat(good, new Uint8Array([0])), [600, 600]);
      expect(s.localReply?.status).toBe(413);
      expect(s.actions).toHaveLength(3); // headers, then both chunks: the second one passed the limit
    });
  });
});
