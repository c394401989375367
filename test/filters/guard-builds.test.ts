import { describe, expect, it } from 'vitest';
import { GUARD_MODULES, type GuardModule, guardModuleFor } from '../../istio/render/guard-modules.js';
import { PEER_URI_SAN, ProxyWasmHost, header, type Headers } from './host.js';
import { builtFilter } from './built.js';

// The guard builds (filters/guard/index*.ts): the same checks, each build
// exporting fewer callbacks. Each must run the configurations it can enforce
// exactly as the full module does, and refuse the others (fail closed).
const APP = 'spiffe://cluster.local/ns/app/sa/web';
const RATE = { identity: 'peer_certificate', default: { perSecond: 1, burst: 3 }, maxCallers: 100 };
const PAYLOAD = { defaultMaxBytes: 1000, routes: [{ prefix: '/v2/models/', maxBytes: 4000 }] };

const CONFIGS = {
  'budget headers, no response cap': { rateLimit: RATE, payloadLimit: PAYLOAD },
  'no budget headers, no response cap': { rateLimit: { ...RATE, budgetHeaders: false }, payloadLimit: PAYLOAD },
  'payload limit alone, no response cap': { payloadLimit: PAYLOAD },
  'rate limit alone, budget headers': { rateLimit: RATE },
  'rate limit alone, no budget headers': { rateLimit: { ...RATE, budgetHeaders: false } },
  'response cap, no budget headers': { rateLimit: { ...RATE, budgetHeaders: false }, payloadLimit: { ...PAYLOAD, maxResponseBytes: 64 } },
  'response cap and budget headers': { rateLimit: RATE, payloadLimit: { ...PAYLOAD, maxResponseBytes: 64 } },
} as const;
type Config = (typeof CONFIGS)[keyof typeof CONFIGS];

// What render picks for each (istio/render/guard-modules.ts), written out.
const PICKED: Record<keyof typeof CONFIGS, GuardModule> = {
  'budget headers, no response cap': 'guard-no-response-body',
  'no budget headers, no response cap': 'guard-request-only',
  'payload limit alone, no response cap': 'guard-request-only',
  'rate limit alone, budget headers': 'guard-no-response-body',
  'rate limit alone, no budget headers': 'guard-request-only',
  'response cap, no budget headers': 'guard',
  'response cap and budget headers': 'guard',
};

const pick = (c: Config) => guardModuleFor(('rateLimit' in c ? c.rateLimit : null) as never, ('payloadLimit' in c ? c.payloadLimit : null) as never);

function errors(host: ProxyWasmHost): string[] {
  return host.logs.filter((l) => l.level === 4).map((l) => l.message);
}

const post = (path: string, extra: Headers = []): Headers => [[':method', 'POST'], [':path', path], ...extra];
const sized = (bytes: number) => post('/v1/models/bert:predict', [['content-length', String(bytes)]]);

describe('guard builds: render\'s choice and the modules agree', () => {
  it.each(Object.keys(CONFIGS) as Array<keyof typeof CONFIGS>)('%s: render picks the smallest build that accepts it, and every smaller build refuses it', (name) => {
    const config = CONFIGS[name];
    expect(pick(config)).toBe(PICKED[name]);
    const at = GUARD_MODULES.indexOf(PICKED[name]);
    GUARD_MODULES.forEach((module, i) => {
      const host = new ProxyWasmHost(builtFilter(module));
      expect(host.configure(config), `${module} on ${name}`).toBe(i >= at);
      expect(errors(host), module).toHaveLength(i >= at ? 0 : 1);
    });
  });
});

describe('guard builds: a build refuses a configuration that needs a callback it lacks, saying which and what to deploy', () => {
  it.each([
    ['guard-request-only', CONFIGS['budget headers, no response cap'],
      'guard: rejecting configuration: configuration.rateLimit.budgetHeaders (true, the default) needs the response-headers callback, which this build (guard-request-only) does not export: deploy guard-no-response-body.wasm, or set budgetHeaders to false'],
    ['guard-request-only', CONFIGS['response cap, no budget headers'],
      'guard: rejecting configuration: configuration.payloadLimit.maxResponseBytes (64) needs the response-headers and response-body callbacks, which this build (guard-request-only) does not export: deploy guard.wasm'],
    ['guard-no-response-body', CONFIGS['response cap and budget headers'],
      'guard: rejecting configuration: configuration.payloadLimit.maxResponseBytes (64) needs the response-headers and response-body callbacks, which this build (guard-no-response-body) does not export: deploy guard.wasm'],
  ] as const)('%s: %j', (module, config, message) => {
    const host = new ProxyWasmHost(builtFilter(module));
    expect(host.configure(config)).toBe(false);
    expect(errors(host)).toEqual([message]);
    // and it stays inert: no stream context, so no request is ever handled by a half-configured check
    expect(host.request(sized(10), [10], { [PEER_URI_SAN]: APP }).actions).toEqual([0, 0, 0]);
  });

  it('a bad budgetHeaders is a configuration error in every build, with the rate-limit filter\'s own message', () => {
    for (const module of GUARD_MODULES) {
      const host = new ProxyWasmHost(builtFilter(module));
      expect(host.configure({ rateLimit: { ...RATE, budgetHeaders: 0 } })).toBe(false);
      expect(errors(host)).toEqual(['guard: rejecting configuration: configuration.rateLimit.budgetHeaders must be true or false']);
    }
  });
});

describe('guard builds: each enforces what it accepts as the full module does', () => {
  const from = (host: ProxyWasmHost, headers: Headers, chunks: number[] = []) => host.request(headers, chunks, { [PEER_URI_SAN]: APP });
  const chunked = post('/v1/models/bert:predict', [['transfer-encoding', 'chunked']]);

  it.each(GUARD_MODULES.filter((m) => m !== 'guard'))('%s: same replies, statuses and headers as guard.wasm for every configuration it accepts', (module) => {
    for (const [name, config] of Object.entries(CONFIGS)) {
      const small = new ProxyWasmHost(builtFilter(module));
      if (!small.configure(config)) continue;
      const full = new ProxyWasmHost(builtFilter('guard'));
      expect(full.configure(config)).toBe(true);
      // under the limits, over the declared limit, over while streaming, then over budget
      const script: Array<[Headers, number[]]> = [[sized(10), [10]], [sized(1001), [1001]], [chunked, [600, 600]], [sized(10), [10]], [sized(10), [10]]];
      const run = (h: ProxyWasmHost) => script.map(([hs, chunks]) => {
        const s = from(h, hs, chunks);
        return { reply: s.localReply && { status: s.localReply.status, headers: s.localReply.headers }, response: s.responseHeaders };
      });
      expect(run(small), `${module} on ${name}`).toEqual(run(full));
    }
  });

  it('guard-request-only: allowed responses untouched, a 413 from a streamed body and a 429 with its budget headers', () => {
    const host = new ProxyWasmHost(builtFilter('guard-request-only'));
    expect(host.configure(CONFIGS['no budget headers, no response cap'])).toBe(true);
    const ok = from(host, sized(10), [10]);
    expect(ok.localReply).toBeNull();
    expect(ok.responseHeaders).toEqual([[':status', '200']]);
    expect(from(host, chunked, [600, 600]).localReply?.status).toBe(413);
    expect(from(host, sized(10), [10]).localReply).toBeNull();
    const denied = from(host, sized(10), [10]).localReply!;
    expect(denied.status).toBe(429);
    expect(header(denied.headers, 'x-ratelimit-limit')).toBe('3');
  });

  it('guard-no-response-body: echoes the budget on allowed responses', () => {
    const host = new ProxyWasmHost(builtFilter('guard-no-response-body'));
    expect(host.configure(CONFIGS['budget headers, no response cap'])).toBe(true);
    expect(header(from(host, sized(10), [10]).responseHeaders, 'x-ratelimit-remaining')).toBe('2');
  });
});
