import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import { connect } from 'node:http2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { wasmHttpFilter } from '../../envoy/bootstrap.js';
import { startEnvoy, type EnvoyHandle } from '../helpers/envoy.js';
import { startE2eStack, type E2eStack } from '../helpers/e2e-stack.js';
import { mtlsRequest, type Reply } from '../helpers/mtls-client.js';
import type { Pki } from '../helpers/pki.js';
import type { Upstream } from '../helpers/upstream.js';
import { builtFilter } from '../filters/built.js';
import { guardModuleFor } from '../../istio/render/guard-modules.js';

const TD = 'spiffe://cluster.local/ns/e2e/sa/';
const IDS = { payload: `${TD}payload`, a: `${TD}a`, b: `${TD}b`, many: `${TD}many`, manyExact: `${TD}many-exact`, refill: `${TD}refill` };
type Caller = keyof typeof IDS;
const HOST = 'model-serving.ml.svc.cluster.local';
const GRPC_PATH = '/inference.GRPCInferenceService/ModelInfer';

const MANIFEST = `trustDomains: [cluster.local]
rules:
  - name: filters-e2e
    callers: ["spiffe://cluster.local/ns/e2e/*"]
    methods: [POST]
    paths: ["/v1/models/*:predict", "/inference.GRPCInferenceService/*"]
`;

const PAYLOAD = { defaultMaxBytes: 4096, routes: [{ path: '/v1/models/*:predict', maxBytes: 1000 }] };
const BURST = 10;
const RATE = {
  identity: 'peer_certificate',
  default: { perSecond: 1, burst: BURST },
  callers: [
    { match: IDS.payload, perSecond: 1000, burst: 1000 },
    { match: IDS.refill, perSecond: 1, burst: 2 },
    // the default's limit, but a bucket of its own (exact rule) instead of a shared slot
    { match: IDS.manyExact, perSecond: 1, burst: BURST },
  ],
  unauthenticated: 'deny',
  maxCallers: 1000,
};

/**
 * guard as `infergate render` deploys it: the build the configuration needs
 * (istio/render/guard-modules.ts), which for RATE and PAYLOAD is
 * guard-no-response-body, for the response cap the full guard.
 */
function guardFilter(rate: unknown, payload: unknown): object {
  const module = guardModuleFor(rate as never, payload as never);
  return wasmHttpFilter('guard', builtFilter(module), { rateLimit: rate, payloadLimit: payload });
}
const GUARD_REJECTS = { rate: 'guard: rejecting configuration: configuration.rateLimit.identity must be', payload: 'guard: rejecting configuration: configuration.payloadLimit.defaultMaxBytes must be an integer' };
const withoutBudgetHeaders = (rate: unknown) => (typeof rate === 'object' && rate !== null ? { ...rate, budgetHeaders: false } : rate);

// The deployment forms: the separate filters in a chain, or the guard module
// doing both checks in one filter, in the build its configuration needs; and
// guard without budget headers on allowed responses, which needs no response
// callback (guard-request-only). Every case below runs against each.
const FORMS = {
  'two filters': {
    filters: (rate: unknown, payload: unknown): object[] =>
      // Authorization first (added by renderBootstrap), then the per-caller budget, then the size limit.
      [wasmHttpFilter('rate_limit', builtFilter('rate-limit'), rate), wasmHttpFilter('payload_limit', builtFilter('payload-limit'), payload)],
    rejects: { rate: 'rate-limit: rejecting configuration: configuration.identity must be', payload: 'payload-limit: rejecting configuration: configuration.defaultMaxBytes must be an integer' },
    budgetHeaders: true,
    module: null,
  },
  'guard (one filter, the build the configuration needs)': {
    filters: (rate: unknown, payload: unknown): object[] => [guardFilter(rate, payload)],
    rejects: GUARD_REJECTS,
    budgetHeaders: true,
    module: 'guard-no-response-body',
  },
  'guard without budget headers (request side only)': {
    filters: (rate: unknown, payload: unknown): object[] => [guardFilter(withoutBudgetHeaders(rate), payload)],
    rejects: GUARD_REJECTS,
    budgetHeaders: false,
    module: 'guard-request-only',
  },
} as const;

/** Envoy given `yaml` exits at start-up, and its output says `reason`. */
async function expectEnvoyRefuses(yaml: string, reason: string): Promise<void> {
  const err = await startEnvoy(yaml, { concurrency: 2 }).then(
    async (e) => { await e.stop(); return null; },
    (e: Error) => e,
  );
  expect(err).not.toBeNull();
  expect(err!.message).toContain('envoy exited');
  expect(err!.message).toContain(reason);
}

describe.each(Object.keys(FORMS) as Array<keyof typeof FORMS>)('proxy-wasm filters in the real Envoy (V8, --concurrency 2, mTLS with SPIFFE certs, after ext_authz): %s', (form) => {
  const filters = (rate: unknown = RATE, payload: unknown = PAYLOAD) => FORMS[form].filters(rate, payload);
  /** An allowed response's x-ratelimit-* value: the budget left, or nothing where budget headers are off. */
  const budget = (n: number) => (FORMS[form].budgetHeaders ? String(n) : undefined);
  let stack: E2eStack;
  let pki: Pki;
  let upstream: Upstream;
  let envoy: EnvoyHandle;
  let port: number;

  const post = (who: Caller, path: string, body: string | Buffer, headers: Record<string, string> = {}): Promise<Reply> =>
    mtlsRequest(port, pki.caCert, pki.client(who), { method: 'POST', path, headers, body, host: HOST });
  const seen = (path: string) => upstream.requests.filter((r) => r.path === path);

  /** HTTP/1.1 chunked upload, one write per chunk; resolves with the reply even if Envoy answers mid-upload. */
  function chunked(who: Caller, path: string, chunks: number[]): Promise<Reply> {
    const c = pki.client(who);
    return new Promise((resolve, reject) => {
      const req = request(
        { host: '127.0.0.1', port, servername: 'localhost', method: 'POST', path, agent: false, timeout: 5000,
          headers: { host: HOST, 'transfer-encoding': 'chunked' },
          ca: readFileSync(pki.caCert), cert: readFileSync(c.cert), key: readFileSync(c.key) },
        (res) => {
          let body = '';
          res.on('data', (d: Buffer) => (body += d.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
        },
      );
      req.on('error', reject);
      void (async () => {
        for (const n of chunks) {
          if (req.destroyed) return;
          req.write(Buffer.alloc(n, 0x61));
          await new Promise((r) => setTimeout(r, 20));
        }
        req.end();
      })();
    });
  }

  /** A gRPC call over HTTP/2 (mTLS, ALPN h2) streaming `chunks` without content-length. */
  function grpcCall(who: Caller, chunks: number[]): Promise<Record<string, string | string[] | undefined>> {
    const c = pki.client(who);
    return new Promise((resolve, reject) => {
      const session = connect(`https://127.0.0.1:${port}`, {
        ca: readFileSync(pki.caCert), cert: readFileSync(c.cert), key: readFileSync(c.key), servername: 'localhost',
      });
      session.on('error', reject);
      const stream = session.request({ ':method': 'POST', ':path': GRPC_PATH, ':authority': HOST, 'content-type': 'application/grpc', te: 'trailers' });
      let headers: Record<string, string | string[] | undefined> = {};
      stream.on('response', (h) => (headers = { ...h }));
      stream.on('trailers', (t) => (headers = { ...headers, ...t }));
      const done = () => { session.close(); resolve(headers); };
      stream.on('close', done);
      stream.on('error', () => {}); // a reset after the reply is expected; the reply is what we assert on
      stream.resume();
      void (async () => {
        for (const n of chunks) {
          if (stream.destroyed || stream.closed) return;
          stream.write(Buffer.alloc(n, 0x62));
          await new Promise((r) => setTimeout(r, 20));
        }
        if (!stream.closed) stream.end();
      })();
    });
  }

  async function stat(name: string): Promise<number> {
    const text = await (await fetch(`http://127.0.0.1:${envoy.adminPort}/stats?filter=${encodeURIComponent(name)}`)).text();
    const line = text.split('\n').find((l) => l.startsWith(`${name}: `));
    return line ? Number(line.slice(name.length + 2)) : NaN;
  }

  async function statMatching(re: RegExp): Promise<number> {
    const text = await (await fetch(`http://127.0.0.1:${envoy.adminPort}/stats`)).text();
    const line = text.split('\n').find((l) => re.test(l.split(': ')[0] ?? ''));
    return line ? Number(line.split(': ')[1]) : NaN;
  }

  beforeAll(async () => {
    stack = await startE2eStack({ name: 'filters', manifest: MANIFEST, clients: IDS, httpFilters: filters(), upstream: 'h2c' });
    ({ pki, upstream, envoy, port } = stack);
  });

  afterAll(async () => {
    await stack?.stop();
  });

  it('loads the module the configuration needs', () => {
    const loaded = (filters() as any[]).map((f) => f.typed_config.config.vm_config.code.local.filename.replace(/^.*\//, ''));
    const module = FORMS[form].module;
    expect(loaded).toEqual(module === null ? ['rate-limit.wasm', 'payload-limit.wasm'] : [`${module}.wasm`]);
  });

  describe('payload-limit', () => {
    it('answers 413 to a content-length over the limit, and no body byte reaches the model server', async () => {
      const path = '/v1/models/declared-over:predict';
      const res = await post('payload', path, Buffer.alloc(1001, 0x61));
      expect(res.status).toBe(413);
      expect(JSON.parse(res.body)).toEqual({ code: 'payload_too_large', limit: 1000 });
      expect(seen(path)).toEqual([]);
    });

    it('lets exactly the limit through, whole', async () => {
      const path = '/v1/models/exact:predict';
      const res = await post('payload', path, Buffer.alloc(1000, 0x61));
      expect(res.status).toBe(200);
      expect(seen(path).map((r) => r.bodyBytes)).toEqual([1000]);
    });

    it('answers 413 to a chunked body as soon as it passes the limit', async () => {
      const path = '/v1/models/chunked-over:predict';
      const res = await chunked('payload', path, [400, 400, 400, 400, 400]);
      expect(res.status).toBe(413);
      expect(JSON.parse(res.body)).toEqual({ code: 'payload_too_large', limit: 1000 });
      expect(seen(path)).toEqual([]); // the upstream never saw a complete request
    });

    it('passes a chunked body within the limit', async () => {
      const path = '/v1/models/chunked-ok:predict';
      const res = await chunked('payload', path, [400, 400, 200]);
      expect(res.status).toBe(200);
      expect(seen(path).map((r) => r.bodyBytes)).toEqual([1000]);
    });

    it('answers an HTTP/2 gRPC call over the limit with grpc-status 8 (RESOURCE_EXHAUSTED)', async () => {
      const headers = await grpcCall('payload', [2000, 2000, 2000]);
      expect(headers[':status']).toBe(200);
      expect(headers['grpc-status']).toBe('8');
    });

    it('lets a gRPC call within the limit reach the model server', async () => {
      const headers = await grpcCall('payload', [2000, 2000]);
      expect(headers['grpc-status']).toBe('0');
      expect(seen(GRPC_PATH).map((r) => r.bodyBytes)).toContain(4000);
    });
  });

  describe('rate-limit', () => {
    it('lets a burst from one caller through up to the configured number, then 429 with headers; a second caller is unaffected', async () => {
      const path = '/v1/models/burst:predict';
      const started = Date.now();
      const replies: Reply[] = [];
      for (let i = 0; i < BURST + 4; i++) replies.push(await post('a', path, '{}'));
      const elapsedS = (Date.now() - started) / 1000;
      // at 1 token/s a slow run earns whole extra tokens; none if it takes under a second
      const refilled = Math.floor(elapsedS * RATE.default.perSecond);
      const ok = replies.filter((r) => r.status === 200);
      expect(ok.length).toBeGreaterThanOrEqual(BURST);
      expect(ok.length).toBeLessThanOrEqual(BURST + refilled);
      expect(ok[0]!.headers['x-ratelimit-limit']).toBe(budget(BURST));
      expect(ok[0]!.headers['x-ratelimit-remaining']).toBe(budget(BURST - 1));
      const denied = replies.filter((r) => r.status !== 200);
      expect(denied.length).toBeGreaterThan(0);
      for (const r of denied) {
        expect(r.status).toBe(429);
        expect(r.headers['retry-after']).toBe('1');
        expect(r.headers['x-ratelimit-limit']).toBe(String(BURST));
        expect(r.headers['x-ratelimit-remaining']).toBe('0');
        expect(Number(r.headers['x-ratelimit-reset'])).toBeGreaterThan(0);
        expect(JSON.parse(r.body)).toMatchObject({ code: 'rate_limited' });
      }
      const other = await post('b', path, '{}');
      expect(other.status).toBe(200);
      expect(other.headers['x-ratelimit-remaining']).toBe(budget(BURST - 1));
    });

    it.each([
      ['many', 'a shared slot'],
      ['manyExact', 'a bucket of its own (exact rule)'],
    ] as const)('shares one budget across both workers (many concurrent connections from one caller): %s, in %s', async (who, _bucket) => {
      const path = `/v1/models/workers-${who}:predict`;
      // Envoy names listener stats after the configured address (port 0 here), hence the pattern.
      const perWorker = async () => Promise.all([0, 1].map((w) => statMatching(new RegExp(`^listener\\.127\\.0\\.0\\.1_\\d+\\.worker_${w}\\.downstream_cx_total$`))));
      const before = await perWorker();
      const started = Date.now();
      const replies = await Promise.all(Array.from({ length: 3 * BURST }, () => post(who, path, '{}')));
      const refilled = Math.floor(((Date.now() - started) / 1000) * RATE.default.perSecond);
      const after = await perWorker();
      // both workers took connections, yet the caller got one bucket's worth
      expect(after[0]! - before[0]!).toBeGreaterThan(0);
      expect(after[1]! - before[1]!).toBeGreaterThan(0);
      const ok = replies.filter((r) => r.status === 200).length;
      expect(ok).toBeGreaterThanOrEqual(BURST);
      expect(ok).toBeLessThanOrEqual(BURST + refilled);
      expect(replies.filter((r) => r.status === 429).length).toBe(3 * BURST - ok);
    });

    it('refills the bucket after waiting', async () => {
      const path = '/v1/models/refill:predict';
      const first = await Promise.all([1, 2, 3].map(() => post('refill', path, '{}')));
      expect(first.map((r) => r.status).sort()).toEqual([200, 200, 429]);
      await new Promise((r) => setTimeout(r, 1100));
      expect((await post('refill', path, '{}')).status).toBe(200);
      expect((await post('refill', path, '{}')).status).toBe(429);
    });
  });

  describe('rate-limit keyed on the header ext_authz sets (identity: header:x-infergate-caller)', () => {
    let headerEnvoy: EnvoyHandle;
    let headerPort: number;

    beforeAll(async () => {
      headerEnvoy = await startEnvoy(
        stack.bootstrap(filters({ ...RATE, identity: 'header:x-infergate-caller' })),
        { concurrency: 2 },
      );
      headerPort = headerEnvoy.listenerPort('ingress');
    });

    afterAll(async () => {
      await headerEnvoy?.stop();
    });

    it('cannot be dodged by forging the header: ext_authz overwrites it with the verified identity first', async () => {
      const path = '/v1/models/forged:predict';
      const started = Date.now();
      const replies: Reply[] = [];
      for (let i = 0; i < BURST + 4; i++) {
        replies.push(await mtlsRequest(headerPort, pki.caCert, pki.client('b'), {
          method: 'POST', path, body: '{}', host: HOST,
          headers: { 'x-infergate-caller': `spiffe://cluster.local/ns/e2e/sa/forged-${i}` },
        }));
      }
      const refilled = Math.floor(((Date.now() - started) / 1000) * RATE.default.perSecond);
      const ok = replies.filter((r) => r.status === 200).length;
      expect(ok).toBeGreaterThanOrEqual(BURST);
      expect(ok).toBeLessThanOrEqual(BURST + refilled);
      expect(replies.filter((r) => r.status === 429).length).toBe(BURST + 4 - ok);
      // and the model server only ever saw the verified identity
      expect(new Set(seen(path).map((r) => r.headers['x-infergate-caller']))).toEqual(new Set([IDS.b]));
    });

    it('finds the caller, :path and content-length among many large headers, all read from Envoy\'s one serialized map', async () => {
      const path = '/v1/models/padded:predict';
      const headers = Object.fromEntries(Array.from({ length: 24 }, (_, i) => [`x-pad-${i}`, 'p'.repeat(i === 0 ? 4096 : 64)]));
      const send = (body: string) => mtlsRequest(headerPort, pki.caCert, pki.client('payload'), { method: 'POST', path, headers, body, host: HOST });
      const ok = await send('{}');
      expect(ok.status).toBe(200);
      // the exact rule for this caller (burst 1000, not the default 10): its identity was found and matched
      expect(ok.headers['x-ratelimit-limit']).toBe(budget(1000));
      // over the route's 1000 (the default is 4096): content-length and :path were both found
      const big = await send('a'.repeat(1001));
      expect(big.status).toBe(413);
      expect(JSON.parse(big.body)).toEqual({ code: 'payload_too_large', limit: 1000 });
      expect(seen(path)).toHaveLength(1);
    });
  });

  describe('payload-limit response cap (maxResponseBytes)', () => {
    let capped: EnvoyHandle;

    beforeAll(async () => {
      capped = await startEnvoy(
        stack.bootstrap(filters(RATE, { ...PAYLOAD, maxResponseBytes: 64 })),
        { concurrency: 2 },
      );
    });

    afterAll(async () => {
      await capped?.stop();
    });

    it('replaces a model response larger than the cap with 502 before any of it reaches the caller', async () => {
      // the cap needs the response callbacks: guard runs its full build here
      if (FORMS[form].module !== null) expect(guardModuleFor(RATE as never, { ...PAYLOAD, maxResponseBytes: 64 })).toBe('guard');
      const path = '/v1/models/exfil:predict';
      const res = await mtlsRequest(capped.listenerPort('ingress'), pki.caCert, pki.client('payload'), { method: 'POST', path, body: '{}', host: HOST });
      expect(seen(path)).toHaveLength(1); // the model answered (its echo is a few hundred bytes)…
      expect(res.status).toBe(502); // …but the caller got the guard's reply instead
      expect(JSON.parse(res.body)).toEqual({ code: 'response_too_large', limit: 64 });
    });
  });

  it('publishes allowed/rejected/errors counters on /stats and /stats/prometheus', async () => {
    // "allowed" is batched in each VM and flushed on a 1 s tick (one host call fewer per request)
    const deadline = Date.now() + 3000;
    const allowed = async () => Promise.all(['payload_limit', 'rate_limit'].map((f) => stat(`wasmcustom.infergate.${f}.allowed`)));
    while ((await allowed()).some((n) => !(n > 0)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    for (const f of ['payload_limit', 'rate_limit']) {
      expect(await stat(`wasmcustom.infergate.${f}.allowed`)).toBeGreaterThan(0);
      expect(await stat(`wasmcustom.infergate.${f}.rejected`)).toBeGreaterThan(0);
      expect(await stat(`wasmcustom.infergate.${f}.errors`)).toBe(0);
    }
    const prom = await (await fetch(`http://127.0.0.1:${envoy.adminPort}/stats/prometheus`)).text();
    for (const name of ['infergate_payload_limit_allowed', 'infergate_payload_limit_rejected', 'infergate_payload_limit_errors',
      'infergate_rate_limit_allowed', 'infergate_rate_limit_rejected', 'infergate_rate_limit_errors']) {
      expect(prom).toMatch(new RegExp(`^# TYPE ${name} counter$`, 'm'));
    }
    expect(Number(/^infergate_rate_limit_rejected\{\} (\d+)$/m.exec(prom)?.[1])).toBeGreaterThan(0);
  });

  // Builds are a guard matter: these cases belong to the guard form only (an empty table registers none).
  const lackingCallback = [
    ['guard-request-only', RATE, PAYLOAD,
      'guard: rejecting configuration: configuration.rateLimit.budgetHeaders (true, the default) needs the response-headers callback, which this build (guard-request-only) does not export'],
    ['guard-no-response-body', RATE, { ...PAYLOAD, maxResponseBytes: 64 },
      'guard: rejecting configuration: configuration.payloadLimit.maxResponseBytes (64) needs the response-headers and response-body callbacks, which this build (guard-no-response-body) does not export'],
  ] as const;
  it.each(form === 'guard (one filter, the build the configuration needs)' ? lackingCallback : [])('makes Envoy refuse %s given a configuration that needs a callback the build lacks (fail closed)', async (module, rate, payload, reason) => {
    await expectEnvoyRefuses(stack.bootstrap([wasmHttpFilter('guard', builtFilter(module), { rateLimit: rate, payloadLimit: payload })]), reason);
  });

  it.each([
    ['rate-limit', { ...RATE, identity: 'jwt' }, PAYLOAD, FORMS[form].rejects.rate],
    ['payload-limit', RATE, { defaultMaxBytes: '1MiB' }, FORMS[form].rejects.payload],
  ])('makes Envoy reject the configuration when the %s config is invalid', async (_name, rate, payload, reason) => {
    await expectEnvoyRefuses(stack.bootstrap(filters(rate, payload)), reason);
  });
});
