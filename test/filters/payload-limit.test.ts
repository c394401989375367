import { describe, expect, it } from 'vitest';
import { ProxyWasmHost, header, type Headers } from './host.js';
import { builtFilter } from './built.js';

const WASM = builtFilter('payload-limit');
const MiB = 1024 * 1024;
const CONFIG = {
  defaultMaxBytes: 1000,
  routes: [
    { prefix: '/v2/models/', maxBytes: 8 * MiB },
    { path: '/v1/models/*:predict', maxBytes: 2 * MiB },
  ],
};

function filter(config: unknown = CONFIG): ProxyWasmHost {
  const host = new ProxyWasmHost(WASM);
  expect(host.configure(config)).toBe(true);
  return host;
}

const post = (path: string, extra: Headers = []): Headers => [[':method', 'POST'], [':path', path], [':authority', 'models'], ...extra];
const json = (s: string) => JSON.parse(s) as unknown;

describe('payload-limit: declared content-length', () => {
  it('answers 413 from the headers callback, before any body is read, when content-length passes the limit', () => {
    const host = filter();
    const s = host.newStream(post('/v1/other', [['content-length', '1001']]));
    host.requestHeaders(s, false);
    expect(s.localReply).toMatchObject({ status: 413, grpcStatus: -1, details: 'infergate_payload_too_large' });
    expect(json(s.localReply!.body)).toEqual({ code: 'payload_too_large', limit: 1000 });
    expect(header(s.localReply!.headers, 'content-type')).toBe('application/json');
  });

  it('lets exactly the limit through', () => {
    const host = filter();
    const s = host.request(post('/v1/other', [['content-length', '1000']]), [1000]);
    expect(s.localReply).toBeNull();
    expect(s.actions.every((a) => a === 0)).toBe(true);
  });

  it('picks the first matching route: prefix, then a path pattern whose * stays within one segment', () => {
    const host = filter();
    const at = (path: string, bytes: number) => host.request(post(path, [['content-length', String(bytes)]]), [bytes]).localReply?.status ?? 200;
    expect(at('/v2/models/llama/infer', 8 * MiB)).toBe(200);
    expect(at('/v2/models/llama/infer', 8 * MiB + 1)).toBe(413);
    expect(at('/v1/models/bert:predict', 2 * MiB)).toBe(200);
    expect(at('/v1/models/bert:predict?verbose=1', 2 * MiB + 1)).toBe(413);
    expect(at('/v1/models/bert:predict?verbose=1', 2 * MiB)).toBe(200);
    // `*` does not cross '/', so a deeper path falls back to the default
    expect(at('/v1/models/a/b:predict', 1001)).toBe(413);
    expect(at('/v1/models/bert:explain', 1001)).toBe(413);
  });
});

describe('payload-limit: streamed bodies without content-length', () => {
  it('counts chunks as they pass and answers 413 on the chunk that crosses the limit', () => {
    const host = filter();
    const s = host.request(post('/v1/other', [['transfer-encoding', 'chunked']]), [400, 400, 201, 100]);
    expect(s.localReply?.status).toBe(413);
    // headers + three body callbacks; the fourth chunk never reached the filter
    expect(s.actions).toHaveLength(1 + 3);
    expect(s.actions.slice(0, 3)).toEqual([0, 0, 0]);
  });

  it('never asks Envoy to buffer: every chunk under the limit continues', () => {
    const host = filter();
    const s = host.request(post('/v1/other'), [250, 250, 250, 250]);
    expect(s.localReply).toBeNull();
    expect(s.actions.slice(0, 5)).toEqual([0, 0, 0, 0, 0]);
  });

  it('still counts the body when content-length understates it', () => {
    const host = filter();
    const s = host.request(post('/v1/other', [['content-length', '10']]), [600, 600]);
    expect(s.localReply?.status).toBe(413);
  });
});

describe('payload-limit: gRPC callers', () => {
  it('get grpc-status RESOURCE_EXHAUSTED (8) instead of a bare 413', () => {
    const host = filter();
    const s = host.request(post('/inference.GRPCInferenceService/ModelInfer', [['content-type', 'application/grpc+proto']]), [900, 900]);
    expect(s.localReply).toMatchObject({ status: 413, grpcStatus: 8 });
    expect(header(s.localReply!.headers, 'content-type')).toBeUndefined();
  });

  it('get RESOURCE_EXHAUSTED when a declared content-length is over the limit too', () => {
    const host = filter();
    const s = host.request(post('/inference.GRPCInferenceService/ModelInfer', [['content-type', 'application/grpc'], ['content-length', '1001']]), [1001]);
    expect(s.localReply).toMatchObject({ status: 413, grpcStatus: 8 });
  });
});

describe('payload-limit: response cap', () => {
  const capped = { defaultMaxBytes: 1000, maxResponseBytes: 5000 };

  it('replaces a response whose content-length passes the cap with a 502', () => {
    const host = filter(capped);
    const s = host.newStream(post('/x'));
    host.requestHeaders(s, true);
    host.responseHeaders(s, [[':status', '200'], ['content-length', '5001']], false);
    expect(s.localReply?.status).toBe(502);
    expect(json(s.localReply!.body)).toEqual({ code: 'response_too_large', limit: 5000 });
  });

  it('resets a streamed response as soon as it passes the cap', () => {
    const host = filter(capped);
    const s = host.newStream(post('/x'));
    host.requestHeaders(s, true);
    host.responseHeaders(s, [[':status', '200']], false);
    host.responseBody(s, 3000, false);
    expect(s.closed).toEqual([]);
    host.responseBody(s, 2001, false);
    expect(s.closed).toEqual([1 /* HTTP_RESPONSE */]);
  });

  it('is off by default', () => {
    const host = filter({ defaultMaxBytes: 10 });
    const s = host.newStream(post('/x'));
    host.requestHeaders(s, true);
    host.responseHeaders(s, [[':status', '200'], ['content-length', String(100 * MiB)]], false);
    expect(s.localReply).toBeNull();
  });
});

describe('payload-limit: stats', () => {
  it('counts rejections at once and allowed requests by the next tick', () => {
    const host = filter();
    expect(host.tickPeriodMs).toBe(1000);
    host.request(post('/a', [['content-length', '10']]), [10]);
    host.request(post('/a', [['content-length', '2000']]), [2000]);
    host.request(post('/a'), [999, 999]);
    host.request([[':method', 'GET'], [':path', '/a']]);
    expect(host.metrics.value('infergate.payload_limit.rejected')).toBe(2);
    expect(host.metrics.value('infergate.payload_limit.allowed')).toBe(0); // batched in the VM
    host.tick();
    expect(host.metrics.value('infergate.payload_limit.allowed')).toBe(2);
    expect(host.metrics.value('infergate.payload_limit.errors')).toBe(0);
  });

  it('flushes allowed requests every 64 without waiting for the tick', () => {
    const host = filter();
    for (let i = 0; i < 130; i++) host.request([[':method', 'GET'], [':path', '/a']]);
    expect(host.metrics.value('infergate.payload_limit.allowed')).toBe(128);
    host.tick();
    expect(host.metrics.value('infergate.payload_limit.allowed')).toBe(130);
  });
});

describe('payload-limit: configuration is validated strictly', () => {
  it.each([
    ['not JSON', '{defaultMaxBytes: 1}', 'not valid JSON'],
    ['an unknown key', { defaultMaxBytes: 1, maxBytes: 2 }, 'unknown key "maxBytes"'],
    ['a missing default', { routes: [] }, 'defaultMaxBytes is required'],
    ['a negative limit', { defaultMaxBytes: -1 }, 'defaultMaxBytes must be an integer'],
    ['a fractional limit', { defaultMaxBytes: 1.5 }, 'defaultMaxBytes must be an integer'],
    ['a string limit', { defaultMaxBytes: '1MiB' }, 'defaultMaxBytes must be an integer'],
    ['a route with both prefix and path', { defaultMaxBytes: 1, routes: [{ prefix: '/a', path: '/b', maxBytes: 1 }] }, 'exactly one of'],
    ['a route with neither', { defaultMaxBytes: 1, routes: [{ maxBytes: 1 }] }, 'exactly one of'],
    ['a wildcard prefix', { defaultMaxBytes: 1, routes: [{ prefix: '/a/*', maxBytes: 1 }] }, 'takes no wildcard'],
    ['a relative path', { defaultMaxBytes: 1, routes: [{ path: 'a', maxBytes: 1 }] }, 'must start with /'],
    ['a route without maxBytes', { defaultMaxBytes: 1, routes: [{ path: '/a' }] }, 'routes[0].maxBytes is required'],
    ['a duplicate key', '{"defaultMaxBytes": 1, "defaultMaxBytes": 2}', 'duplicate key'],
    ['an array', '[]', 'must be an object'],
    ['trailing garbage', '{"defaultMaxBytes": 1} x', 'trailing characters'],
  ])('rejects %s and logs why', (_name, config, reason) => {
    const host = new ProxyWasmHost(WASM);
    expect(host.configure(config)).toBe(false);
    const errors = host.logs.filter((l) => l.level === 4).map((l) => l.message);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toContain('payload-limit: rejecting configuration');
    expect(errors[0]).toContain(reason);
  });
});
