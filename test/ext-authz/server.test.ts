import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as grpc from '@grpc/grpc-js';
import { AuthzServer } from '../../ext-authz/src/server.js';
import { authzClient, httpCheck, type AuthzClient } from '../helpers/authz-client.js';
import { EXAMPLE_MANIFEST, requireBundle } from '../helpers/paths.js';

const GATEWAY = 'spiffe://cluster.local/ns/gateway/sa/api-gateway';
const PREDICT = '/v1/models/bert:predict';

function headerMap(list: Array<{ header: { key: string; value: string } }> | undefined): Record<string, string> {
  return Object.fromEntries((list ?? []).map((h) => [h.header.key, h.header.value]));
}

function structValue(res: { dynamic_metadata?: { fields?: Record<string, Record<string, unknown>> } }, key: string): unknown {
  const v = res.dynamic_metadata?.fields?.[key];
  return v ? v[v.kind as string] : undefined;
}

describe('ext-authz gRPC server (real server on port 0)', () => {
  let dir: string;
  let manifest: string;
  let server: AuthzServer;
  let client: AuthzClient;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'infergate-server-'));
    manifest = join(dir, 'manifest.yaml');
    copyFileSync(EXAMPLE_MANIFEST, manifest);
    server = await AuthzServer.start({
      bundlePath: requireBundle(),
      manifestPath: manifest,
      listen: '127.0.0.1:0',
      socket: join(dir, 'authz.sock'),
      metricsListen: '127.0.0.1:0',
      dryRun: false,
      cacheSize: 100,
      cacheTtlSeconds: 60,
      trustXfcc: false,
      inputHeaders: [],
      decisionLog: join(dir, 'decisions.log'),
      logLevel: 'silent',
      watch: true,
      pollMs: 100,
    });
    client = authzClient(`127.0.0.1:${server.port}`);
  });

  afterAll(async () => {
    client?.close();
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('allows a named caller on its route and forwards the verified identity', async () => {
    const res = await client.check(httpCheck(GATEWAY, 'POST', PREDICT, 'model-serving.ml.svc.cluster.local', { 'x-infergate-caller': 'spiffe://cluster.local/ns/x/sa/forged' }));
    expect(res.status?.code ?? 0).toBe(0);
    expect(res.ok_response).toBeDefined();
    const headers = headerMap(res.ok_response!.headers);
    expect(headers['x-infergate-caller']).toBe(GATEWAY);
    expect(headers['x-infergate-rule']).toBe('gateway-predicts');
    expect(res.ok_response!.headers_to_remove).toContain('x-infergate-dry-run');
    expect(structValue(res, 'rule')).toBe('gateway-predicts');
    expect(String(structValue(res, 'decision_id'))).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('denies with an explicit status, a JSON body and a reason header', async () => {
    const res = await client.check(httpCheck('spiffe://cluster.local/ns/other/sa/app', 'POST', PREDICT));
    expect(res.status.code).toBe(7);
    expect(res.denied_response?.status.code).toBe(403);
    expect(headerMap(res.denied_response!.headers)['x-infergate-reason']).toBe('no_matching_rule');
    const body = JSON.parse(res.denied_response!.body) as Record<string, unknown>;
    expect(body).toMatchObject({ code: 'no_matching_rule', rule: null });
    expect(body.decision_id).toBe(structValue(res, 'decision_id'));
  });

  it.each([
    ['a missing identity', undefined, PREDICT, 'no_identity', 403],
    ['an invalid SPIFFE ID', 'spiffe://Cluster.local/ns/a/sa/b', PREDICT, 'invalid_identity', 403],
    ['a caller from another trust domain', 'spiffe://evil.example/ns/gateway/sa/api-gateway', PREDICT, 'foreign_trust_domain', 403],
    ['a quarantined caller', 'spiffe://cluster.local/ns/ml/sa/compromised', PREDICT, 'quarantined', 403],
    ['a deny rule', GATEWAY, '/admin/users', 'denied_by_rule', 403],
    ['a deny rule, with a trailing slash', GATEWAY, '/admin/', 'denied_by_rule', 403],
    ['a dot segment Envoy did not resolve', GATEWAY, '/v1/models/../../admin/users', 'invalid_path', 403],
    ['a path parameter (servlet containers strip it)', GATEWAY, '/v1/models/bert;x=1:predict', 'invalid_path', 403],
    ['an encoded slash', GATEWAY, '/v1/models/a%2Fb:predict', 'invalid_path', 403],
  ])('denies %s', async (_name, principal, path, code, http) => {
    const res = await client.check(httpCheck(principal, 'POST', path));
    expect(res.status.code).not.toBe(0);
    expect(headerMap(res.denied_response!.headers)['x-infergate-reason']).toBe(code);
    expect(res.denied_response!.status.code).toBe(http);
  });

  it('says in the decision log exactly why a path was refused', async () => {
    await client.check(httpCheck(GATEWAY, 'POST', '/v1/models/llama/..;/llama/weights/shard-0'));
    await expect
      .poll(() => readFileSync(join(dir, 'decisions.log'), 'utf8').includes('..;/llama'), { timeout: 2000 })
      .toBe(true);
    const lines = readFileSync(join(dir, 'decisions.log'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.find((l) => String(l.raw_path).includes('..;/llama'))).toMatchObject({
      caller: GATEWAY,
      reason: 'invalid_path',
      result: 'deny',
      path: null,
      raw_path: '/v1/models/llama/..;/llama/weights/shard-0',
      detail: 'semicolon (;) in segment 4: servlet containers strip ";" path parameters; see requestPaths.allowSemicolons',
    });
  });

  it('denies a CheckRequest without attributes as invalid_request', async () => {
    const res = await client.check({});
    expect(res.status.code).toBe(3);
    expect(headerMap(res.denied_response!.headers)['x-infergate-reason']).toBe('invalid_request');
  });

  it('answers a repeated check from the cache', async () => {
    const first = await client.check(httpCheck(GATEWAY, 'POST', '/v1/models/cached:predict'));
    const second = await client.check(httpCheck(GATEWAY, 'POST', '/v1/models/cached:predict'));
    expect(structValue(first, 'cache_hit')).toBe(false);
    expect(structValue(second, 'cache_hit')).toBe(true);
  });

  it('serves the same decisions on its unix socket', async () => {
    const sock = authzClient(`unix:${join(dir, 'authz.sock')}`);
    try {
      const res = await sock.check(httpCheck(GATEWAY, 'POST', PREDICT));
      expect(res.status?.code ?? 0).toBe(0);
    } finally {
      sock.close();
    }
  });

  it('reports SERVING on grpc.health.v1', async () => {
    const { protoPath } = await import('grpc-health-check');
    const protoLoader = await import('@grpc/proto-loader');
    const def = grpc.loadPackageDefinition(protoLoader.loadSync(protoPath, { keepCase: true, enums: String })) as unknown as {
      grpc: { health: { v1: { Health: grpc.ServiceClientConstructor } } };
    };
    const health = new def.grpc.health.v1.Health(`127.0.0.1:${server.port}`, grpc.credentials.createInsecure());
    const status = await new Promise<unknown>((resolve, reject) =>
      (health as unknown as { Check: (r: unknown, cb: (e: Error | null, r: unknown) => void) => void }).Check(
        { service: 'envoy.service.auth.v3.Authorization' },
        (e, r) => (e ? reject(e) : resolve(r)),
      ),
    );
    health.close();
    expect(status).toEqual({ status: 'SERVING' });
  });

  it('exposes decisions, latency, cache and revision on /metrics', async () => {
    const text = await (await fetch(`http://127.0.0.1:${server.metricsPort}/metrics`)).text();
    expect(text).toMatch(/infergate_decisions_total\{result="allow",reason="allowed"\} [1-9]/);
    expect(text).toMatch(/infergate_decisions_total\{result="deny",reason="quarantined"\} 1/);
    expect(text).toMatch(/infergate_check_duration_seconds_bucket\{le="0\.00001"\}/);
    expect(text).toMatch(/infergate_decision_cache_hits_total [1-9]/);
    expect(text).toContain(`infergate_policy_revision_info{revision="${server.revision}"} 1`);
    expect((await fetch(`http://127.0.0.1:${server.metricsPort}/readyz`)).status).toBe(200);
    expect((await fetch(`http://127.0.0.1:${server.metricsPort}/healthz`)).status).toBe(200);
  });

  it("joins each decision log line to Envoy's request id and the request's trace", async () => {
    const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    await client.check(httpCheck(GATEWAY, 'POST', '/v1/models/traced:predict', 'model-serving.ml.svc.cluster.local', { 'x-request-id': 'req-traced-1', traceparent }));
    await expect.poll(() => readFileSync(join(dir, 'decisions.log'), 'utf8'), { timeout: 2000 }).toContain('req-traced-1');
    const line = readFileSync(join(dir, 'decisions.log'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.request_id === 'req-traced-1');
    expect(line).toMatchObject({ path: '/v1/models/traced:predict', trace_id: '4bf92f3577b34da6a3ce929d0e0e4736', span_id: '00f067aa0ba902b7', result: 'allow' });
  });

  it('writes a JSON decision log line per check', async () => {
    await new Promise((r) => setTimeout(r, 200));
    const lines = readFileSync(join(dir, 'decisions.log'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    const q = lines.find((l) => l.reason === 'quarantined');
    expect(q).toMatchObject({ caller: 'spiffe://cluster.local/ns/ml/sa/compromised', result: 'deny', host: 'model-serving.ml.svc.cluster.local', method: 'POST', path: PREDICT, policy_revision: server.revision, cache_hit: false });
    expect(typeof q!.latency_us).toBe('number');
    expect(q!.decision_id).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('applies an edited manifest without a restart, and keeps the last good one on a bad edit', async () => {
    const before = server.revision;
    const quarantineGateway = readFileSync(EXAMPLE_MANIFEST, 'utf8').replace(
      '  - spiffe://cluster.local/ns/ml/sa/compromised',
      `  - spiffe://cluster.local/ns/ml/sa/compromised\n  - ${GATEWAY}`,
    );
    writeFileSync(manifest, quarantineGateway);
    await expect.poll(() => server.revision, { timeout: 3000 }).not.toBe(before);
    const res = await client.check(httpCheck(GATEWAY, 'POST', PREDICT));
    expect(headerMap(res.denied_response?.headers)['x-infergate-reason']).toBe('quarantined');

    const good = server.revision;
    writeFileSync(manifest, 'trustDomains: [cluster.local]\nrules:\n  - name: x\n    calers: []\n');
    await expect
      .poll(async () => (await (await fetch(`http://127.0.0.1:${server.metricsPort}/metrics`)).text()).includes('infergate_policy_reload_errors_total{source="manifest"} 1'), { timeout: 3000 })
      .toBe(true);
    expect(server.revision).toBe(good);
    const still = await client.check(httpCheck(GATEWAY, 'POST', PREDICT));
    expect(headerMap(still.denied_response?.headers)['x-infergate-reason']).toBe('quarantined');
    expect(existsSync(manifest)).toBe(true);
  });

  it('reads ";" as an ordinary character once the manifest says so, and as a path parameter again when it no longer does', async () => {
    const semicolonPath = '/v1/models/bert;v=2:predict';
    const withSemicolons = readFileSync(EXAMPLE_MANIFEST, 'utf8').replace('rules:', 'requestPaths:\n  allowSemicolons: true\nrules:');
    writeFileSync(manifest, withSemicolons);
    await expect.poll(async () => (await client.check(httpCheck(GATEWAY, 'POST', semicolonPath))).status?.code ?? 0, { timeout: 3000 }).toBe(0);
    writeFileSync(manifest, readFileSync(EXAMPLE_MANIFEST, 'utf8'));
    await expect
      .poll(async () => headerMap((await client.check(httpCheck(GATEWAY, 'POST', semicolonPath))).denied_response?.headers)['x-infergate-reason'], { timeout: 3000 })
      .toBe('invalid_path');
  });
});

describe('dry-run mode', () => {
  let server: AuthzServer;
  let client: AuthzClient;

  beforeAll(async () => {
    server = await AuthzServer.start({
      bundlePath: requireBundle(), manifestPath: EXAMPLE_MANIFEST, listen: '127.0.0.1:0', socket: null, metricsListen: '127.0.0.1:0',
      dryRun: true, cacheSize: 100, cacheTtlSeconds: 60, trustXfcc: false, inputHeaders: [], decisionLog: 'off', logLevel: 'silent', watch: false,
    });
    client = authzClient(`127.0.0.1:${server.port}`);
  });
  afterAll(async () => {
    client?.close();
    await server?.stop();
  });

  it('allows what it would deny, tells the upstream why, and counts it as dry_run_deny', async () => {
    const res = await client.check(httpCheck('spiffe://cluster.local/ns/ml/sa/compromised', 'POST', PREDICT));
    expect(res.status?.code ?? 0).toBe(0);
    expect(headerMap(res.ok_response!.headers)['x-infergate-dry-run']).toBe('quarantined');
    expect(structValue(res, 'dry_run_denied')).toBe(true);
    const text = await (await fetch(`http://127.0.0.1:${server.metricsPort}/metrics`)).text();
    expect(text).toMatch(/infergate_decisions_total\{result="dry_run_deny",reason="quarantined"\} 1/);
  });
});
