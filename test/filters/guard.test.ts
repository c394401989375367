import { describe, expect, it } from 'vitest';
import { Metrics, PEER_URI_SAN, ProxyWasmHost, SharedData, header, type Headers } from './host.js';
import { builtFilter } from './built.js';

const WASM = builtFilter('guard');
const APP = 'spiffe://cluster.local/ns/app/sa/web';
const OTHER = 'spiffe://cluster.local/ns/app/sa/other';
const RATE = { identity: 'peer_certificate', default: { perSecond: 1, burst: 3 }, maxCallers: 100 };
const PAYLOAD = { defaultMaxBytes: 1000, routes: [{ prefix: '/v2/models/', maxBytes: 4000 }] };

function guard(config: unknown = { rateLimit: RATE, payloadLimit: PAYLOAD }, opts: ConstructorParameters<typeof ProxyWasmHost>[1] = {}): ProxyWasmHost {
  const host = new ProxyWasmHost(WASM, opts);
  expect(host.configure(config)).toBe(true);
  return host;
}

const post = (path: string, extra: Headers = []): Headers => [[':method', 'POST'], [':path', path], ...extra];
const from = (host: ProxyWasmHost, caller: string, headers: Headers, chunks: number[] = []) =>
  host.request(headers, chunks, { [PEER_URI_SAN]: caller });
const sized = (bytes: number, path = '/v1/models/bert:predict') => post(path, [['content-length', String(bytes)]]);

describe('guard: both checks in one filter', () => {
  it('takes a token and checks the size of the same request, echoing the budget on the response', () => {
    const host = guard();
    const ok = from(host, APP, sized(1000), [1000]);
    expect(ok.localReply).toBeNull();
    expect(header(ok.responseHeaders, 'x-ratelimit-remaining')).toBe('2');
    const big = from(host, APP, sized(1001), [1001]);
    expect(big.localReply?.status).toBe(413);
    expect(JSON.parse(big.localReply!.body)).toEqual({ code: 'payload_too_large', limit: 1000 });
  });

  it('charges an oversized request to the caller\'s budget, as the two filters in a chain would', () => {
    const host = guard();
    expect(from(host, APP, sized(5000), [5000]).localReply?.status).toBe(413);
    expect(from(host, APP, sized(10), [10]).localReply).toBeNull();
    expect(from(host, APP, sized(10), [10]).localReply).toBeNull();
    expect(from(host, APP, sized(10), [10]).localReply?.status).toBe(429);
  });

  it('answers 429 before looking at the body, and counts that request only as a rate-limit rejection', () => {
    const metrics = new Metrics();
    const host = guard(undefined, { metrics });
    for (let i = 0; i < 3; i++) from(host, APP, sized(10), [10]);
    const s = from(host, APP, post('/v1/models/bert:predict', [['transfer-encoding', 'chunked']]), [600, 600]);
    expect(s.localReply?.status).toBe(429);
    expect(s.actions).toHaveLength(1); // no body callback ran: Envoy stops the stream on a local reply
    host.tick();
    expect(metrics.value('infergate.rate_limit.allowed')).toBe(3);
    expect(metrics.value('infergate.rate_limit.rejected')).toBe(1);
    expect(metrics.value('infergate.payload_limit.allowed')).toBe(3);
    expect(metrics.value('infergate.payload_limit.rejected')).toBe(0);
  });

  it('counts a streamed body chunk by chunk with the route\'s limit', () => {
    const host = guard();
    const chunked = post('/v2/models/llama/infer', [['transfer-encoding', 'chunked']]);
    expect(from(host, APP, chunked, [2000, 2000]).localReply).toBeNull();
    const over = from(host, OTHER, chunked, [2000, 2000, 1]);
    expect(over.localReply?.status).toBe(413);
    expect(over.actions).toHaveLength(4); // headers + the three chunks; rejected on the one that crossed
  });

  it('reuses finished streams without carrying state from one request into the next', () => {
    const host = guard({ rateLimit: { ...RATE, default: { perSecond: 1, burst: 1000 } }, payloadLimit: PAYLOAD });
    const chunked = post('/v1/models/bert:predict', [['transfer-encoding', 'chunked']]);
    // 600 + 600 would pass the 1000-byte limit if the count leaked across streams
    for (let i = 0; i < 20; i++) expect(from(host, APP, chunked, [600]).localReply).toBeNull();
    expect(from(host, APP, sized(2000), [2000]).localReply?.status).toBe(413);
    for (let i = 0; i < 20; i++) expect(from(host, APP, chunked, [600]).localReply).toBeNull();
  });

  it('shares one bucket per caller between worker VMs, like the rate-limit filter', () => {
    const shared = new SharedData();
    const workers = [guard(undefined, { shared }), guard(undefined, { shared })];
    const got = [0, 1, 2, 3, 4].map((i) => from(workers[i % 2]!, APP, sized(10), [10]).localReply?.status ?? 200);
    expect(got).toEqual([200, 200, 200, 429, 429]);
  });

  it('runs only the check that is configured', () => {
    const rateOnly = guard({ rateLimit: RATE });
    expect(from(rateOnly, APP, sized(1_000_000), [1_000_000]).localReply).toBeNull();
    const payloadOnly = guard({ payloadLimit: PAYLOAD });
    const statuses = Array.from({ length: 10 }, () => from(payloadOnly, APP, sized(10), [10]).localReply?.status ?? 200);
    expect(statuses.every((s) => s === 200)).toBe(true);
    expect(from(payloadOnly, APP, sized(1001), [1001]).localReply?.status).toBe(413);
  });
});

describe('guard: configuration is validated strictly, with each part\'s own rules', () => {
  it.each([
    ['neither check', {}, 'configuration needs "rateLimit", "payloadLimit" or both'],
    ['an unknown key', { rateLimit: RATE, sizeLimit: {} }, 'configuration: unknown key "sizeLimit"'],
    ['a bad rate-limit part', { rateLimit: { ...RATE, identity: 'jwt' } }, 'configuration.rateLimit.identity must be "peer_certificate" or "header:<name>"'],
    ['a bad payload-limit part', { payloadLimit: { defaultMaxBytes: '1MiB' } }, 'configuration.payloadLimit.defaultMaxBytes must be an integer from 0 to 1125899906842624'],
    ['a nested unknown key', { payloadLimit: { ...PAYLOAD, routes: [{ prefix: '/', max: 1 }] } }, 'configuration.payloadLimit.routes[0]: unknown key "max"'],
    ['a part that is not an object', { rateLimit: [] }, 'configuration.rateLimit must be an object'],
    ['a repeated caller rule', { rateLimit: { ...RATE, callers: [{ match: APP, perSecond: 1, burst: 1 }, { match: APP, perSecond: 9, burst: 9 }] } },
      'configuration.rateLimit.callers[1].match repeats callers[0].match'],
    ['not JSON', 'rateLimit=1', 'configuration is not valid JSON'],
  ])('rejects %s and logs why', (_name, config, reason) => {
    const host = new ProxyWasmHost(WASM);
    expect(host.configure(config)).toBe(false);
    const errors = host.logs.filter((l) => l.level === 4).map((l) => l.message);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toContain(`guard: rejecting configuration: ${reason}`);
  });
});
