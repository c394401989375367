import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renderBootstrap, wasmHttpFilter } from '../../envoy/bootstrap.js';
import { localGlobalRateLimit } from '../../envoy/local-stack.js';
import { startRateLimit, type RateLimitProcess } from '../../envoy/ratelimit-process.js';
import { startRedis, type RedisProcess } from '../../envoy/redis-process.js';
import type { GlobalQuotas } from '../../istio/render/global-quotas-schema.js';
import { rateLimitServiceYaml } from '../../istio/render/global-quotas.js';
import { meshConfig } from '../../istio/render/mesh-config.js';
import { builtFilter } from '../filters/built.js';
import { startEnvoy, type EnvoyHandle } from '../helpers/envoy.js';
import { makePki, type Pki } from '../helpers/pki.js';
import { startUpstream, type Upstream } from '../helpers/upstream.js';
import { variantInput } from './helpers/example.js';

/**
 * The rendered global quotas in the real Envoy, against the real
 * envoyproxy/ratelimit service started with the rendered configuration, and
 * a real Redis: the local Envoy the demo and e2e tests run (ratelimit
 * filters after the guard, the route's rate limits, the header filter), with
 * the guard module in front. ext_authz is left out: the test sends the
 * x-infergate-* headers the server would set (the e2e tests cover the server
 * setting them and stripping a client's). Windows are an hour or a day, so
 * no test straddles a reset.
 */

const QUOTAS = {
  failureMode: 'deny',
  budgets: [
    { name: 'free-tenants', per: 'tenant', tiers: ['free'], limit: { requests: 3, unit: 'hour' } },
    { name: 'image-model', per: 'route', paths: ['/v1/models/sdxl:predict', '/v2/models/sdxl/**'], limit: { requests: 4, unit: 'day' } },
    { name: 'batch-soft', per: 'caller', callers: ['spiffe://cluster.local/ns/batch/*'], limit: { requests: 2, unit: 'hour' }, failureMode: 'allow' },
  ],
};
const GUARD_BURST = 100;

interface Answer {
  status: number;
  headers: Array<[string, string]>;
}

function all(a: Answer, name: string): string[] {
  return a.headers.filter(([k]) => k === name).map(([, v]) => v);
}

/** The one value of a header, failing on none or several (every limiter appends its own). */
function one(a: Answer, name: string): string {
  const v = all(a, name);
  expect(v, `${name} in ${JSON.stringify(a.headers)}`).toHaveLength(1);
  return v[0]!;
}

const tenant = (t: string, tier = 'free') => ({ 'x-infergate-tenant': t, 'x-infergate-tier': tier, 'x-infergate-quota': `tenant/${tier}/${t}`, 'x-infergate-caller': 'spiffe://cluster.local/ns/gateway/sa/api-gateway' });
const workload = (id: string) => ({ 'x-infergate-caller': id, 'x-infergate-quota': `workload/${id}` });

describe('global quotas in the real Envoy and rate-limit service', () => {
  let tmp: string;
  let pki: Pki;
  let redis: RedisProcess;
  let rl: RateLimitProcess;
  let upstream: Upstream;
  let envoy: EnvoyHandle;
  let q: GlobalQuotas;

  function send(path: string, headers: Record<string, string>): Promise<Answer> {
    const client = pki.client('caller');
    return new Promise((resolve, reject) => {
      const req = request(
        {
          host: '127.0.0.1', port: envoy.listenerPort('ingress'), servername: 'localhost', method: 'POST', path, headers,
          ca: readFileSync(pki.caCert), cert: readFileSync(client.cert), key: readFileSync(client.key), agent: false, timeout: 5000,
        },
        (res) => {
          res.resume();
          const pairs: Array<[string, string]> = [];
          for (let i = 0; i < res.rawHeaders.length; i += 2) pairs.push([res.rawHeaders[i]!.toLowerCase(), res.rawHeaders[i + 1]!]);
          res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: pairs }));
        },
      );
      req.on('error', reject);
      req.end('{}');
    });
  }

  beforeAll(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'infergate-gq-'));
    q = variantInput(() => {}, (m) => { m.globalQuotas = QUOTAS; }).globalQuotas!;
    pki = makePki(join(tmp, 'pki'), { caller: 'spiffe://cluster.local/ns/gateway/sa/api-gateway' });
    redis = await startRedis();
    rl = await startRateLimit({ config: rateLimitServiceYaml(q), redisPort: redis.port });
    upstream = await startUpstream();
    const guard = wasmHttpFilter('infergate-guard', builtFilter('guard'), {
      rateLimit: { identity: 'header:x-infergate-quota', default: { perSecond: GUARD_BURST, burst: GUARD_BURST }, unauthenticated: 'allow' },
    });
    envoy = await startEnvoy(renderBootstrap({
      listenerPort: 0, tls: pki, extAuthz: null, httpFilters: [guard],
      upstream: { host: '127.0.0.1', port: upstream.port },
      globalRateLimit: localGlobalRateLimit(q, rl.grpcPort),
    }));
  }, 60_000);

  afterAll(async () => {
    await envoy?.stop();
    await rl?.stop();
    await redis?.stop();
    await upstream?.close();
    rmSync(tmp, { recursive: true, force: true });
  });

  it('gives each free-tier tenant its own budget: the 429 says the limit, none left, and when to retry; other tenants and workloads are not counted', async () => {
    for (const remaining of ['2', '1', '0']) {
      const r = await send('/v1/models/text-small:predict', tenant('acme'));
      expect(r.status).toBe(200);
      // The global budget's headers, once each: the guard's own (burst 100) are folded away.
      expect([one(r, 'x-ratelimit-limit'), one(r, 'x-ratelimit-remaining')]).toEqual(['3, 3;w=3600', remaining]);
      expect(all(r, 'retry-after')).toEqual([]);
    }
    const refused = await send('/v1/models/text-small:predict', tenant('acme'));
    expect(refused.status).toBe(429);
    expect([one(refused, 'x-ratelimit-limit'), one(refused, 'x-ratelimit-remaining')]).toEqual(['3, 3;w=3600', '0']);
    const reset = Number(one(refused, 'x-ratelimit-reset'));
    expect(reset).toBeGreaterThan(0);
    expect(reset).toBeLessThanOrEqual(3600);
    expect(one(refused, 'retry-after')).toBe(String(reset));
    expect(one(refused, 'x-envoy-ratelimited')).toBe('true');

    expect((await send('/v1/models/text-small:predict', tenant('globex'))).status).toBe(200);
    // A premium tenant and a workload match no budget: no call is made, only the guard speaks.
    for (const headers of [tenant('initech', 'premium'), workload('spiffe://cluster.local/ns/web/sa/frontend')]) {
      const r = await send('/v1/models/text-small:predict', headers);
      expect(r.status).toBe(200);
      expect(one(r, 'x-ratelimit-limit')).toBe(String(GUARD_BURST));
    }
  });

  it('counts a route budget whatever form of the path the server would authorize under its globs: escapes, a query, a trailing slash', async () => {
    const counted = ['/v1/models/sdxl:predict', '/v1/models/sdxl%3Apredict', '/v1/models/sdxl%3apredict?stream=1', '/v1/models/%73dxl:predict'];
    for (const [i, path] of counted.entries()) {
      const r = await send(path, workload('spiffe://cluster.local/ns/web/sa/frontend'));
      expect(r.status, path).toBe(200);
      expect(one(r, 'x-ratelimit-remaining'), path).toBe(String(3 - i));
    }
    const refused = await send('/v2/models/sdxl/infer/', workload('spiffe://cluster.local/ns/web/sa/frontend'));
    expect(refused.status).toBe(429);
    expect(one(refused, 'x-ratelimit-limit')).toBe('4, 4;w=86400');
    // Another model is not in the budget.
    const other = await send('/v1/models/sdxl-turbo:predict', workload('spiffe://cluster.local/ns/web/sa/frontend'));
    expect(other.status).toBe(200);
    expect(one(other, 'x-ratelimit-limit')).toBe(String(GUARD_BURST));
  });

  it('with a deny and an allow budget on one request (two filters, two calls), still one value per header, the refusing budget\'s on the 429', async () => {
    const both = { ...tenant('hooli'), ...workload('spiffe://cluster.local/ns/batch/sa/mixed') };
    for (const remaining of ['1', '0']) {
      const r = await send('/v1/models/text-small:predict', both);
      expect(r.status).toBe(200);
      // Both budgets answered; the filter nearest the router (the allow budget's) is the one shown.
      expect([one(r, 'x-ratelimit-limit'), one(r, 'x-ratelimit-remaining')]).toEqual(['2, 2;w=3600', remaining]);
    }
    const refused = await send('/v1/models/text-small:predict', both);
    expect(refused.status).toBe(429);
    expect([one(refused, 'x-ratelimit-limit'), one(refused, 'x-ratelimit-remaining')]).toEqual(['2, 2;w=3600', '0']);
    expect(one(refused, 'retry-after')).toBe(one(refused, 'x-ratelimit-reset'));
  });

  it('the service holds exactly the rendered budgets: each descriptor Envoy sends has its limit', async () => {
    const limits: Array<{ requestsPerUnit: number; unit: string }> = [];
    for (const entries of [
      [{ key: 'budget', value: 'free-tenants' }, { key: 'tenant', value: 'probe' }],
      [{ key: 'budget', value: 'image-model' }],
      [{ key: 'budget', value: 'batch-soft' }, { key: 'caller', value: 'spiffe://cluster.local/ns/batch/sa/probe' }],
    ]) {
      const res = await fetch(`http://127.0.0.1:${rl.httpPort}/json`, { method: 'POST', body: JSON.stringify({ domain: 'infergate', descriptors: [{ entries }] }) });
      const body = (await res.json()) as { statuses: Array<{ currentLimit: { requestsPerUnit: number; unit: string } }> };
      limits.push(body.statuses[0]!.currentLimit);
    }
    expect(limits).toEqual([{ requestsPerUnit: 3, unit: 'HOUR' }, { requestsPerUnit: 4, unit: 'DAY' }, { requestsPerUnit: 2, unit: 'HOUR' }]);
  });

  it('with the service down, a deny budget refuses (503) and an allow budget lets requests through', async () => {
    await rl.stop();
    const denied = await send('/v1/models/text-small:predict', tenant('umbrella'));
    expect(denied.status).toBe(503);
    // No budget answered: only the guard's own headers, and nothing that says when to retry.
    expect(all(denied, 'x-ratelimit-limit')).toEqual([String(GUARD_BURST)]);
    expect(all(denied, 'retry-after')).toEqual([]);
    expect((await send('/v1/models/text-small:predict', workload('spiffe://cluster.local/ns/batch/sa/other'))).status).toBe(200);
    expect((await send('/v1/models/text-small:predict', tenant('initech', 'premium'))).status).toBe(200);
  });

  it("counts each filter's decisions under names the rendered Istio stats inclusion keeps", async () => {
    const stats = Object.fromEntries((await (await fetch(`http://127.0.0.1:${envoy.adminPort}/stats`)).text()).split('\n')
      .filter((l) => l.includes('.ratelimit.')).map((l) => l.split(': ') as [string, string]));
    const regex = new RegExp(`^${(meshConfig(variantInput(() => {}).deployment) as any).spec.meshConfig.defaultConfig.proxyStatsMatcher.inclusionRegexps[1]}$`);
    for (const name of ['deny.ok', 'deny.over_limit', 'deny.error', 'allow.ok', 'allow.over_limit', 'allow.failure_mode_allowed']) {
      const stat = `cluster.upstream.ratelimit.infergate_global_quotas_${name}`;
      expect(Number(stats[stat]), stat).toBeGreaterThan(0);
      expect(stat).toMatch(regex);
    }
    expect('cluster.upstream.ratelimit.other.ok').not.toMatch(regex);
  });
});
