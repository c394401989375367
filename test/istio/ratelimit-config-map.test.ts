import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rateLimitBinary } from '../../envoy/ratelimit-process.js';
import { startRedis, type RedisProcess } from '../../envoy/redis-process.js';
import { freePort, startService, type ServiceProcess } from '../../envoy/service-process.js';
import type { RenderInput } from '../../istio/render/load-input.js';
import { RATELIMIT_CONFIG_KEY } from '../../istio/render/names.js';
import { rateLimitDeployment } from '../../istio/render/ratelimit-service.js';
import { renderFiles } from '../../istio/render/render.js';
import { exampleInput, variantInput } from './helpers/example.js';

/**
 * The rendered rate-limit Deployment's environment and ConfigMap, run for
 * real: the pinned envoyproxy/ratelimit binary with the rendered env (only
 * addresses moved to loopback and free ports), reading the rendered
 * ConfigMap laid out as the kubelet mounts it (`..data` symlink to a
 * timestamped directory, the key a symlink through it). It loads the
 * budgets once, not once per directory, and an update applied as the
 * kubelet applies it (a new directory, `..data` swapped in one rename)
 * reaches the running service without a restart.
 */

function configMapData(input: RenderInput): string {
  const cm = renderFiles(input).find((f) => f.name === 'ratelimit.yaml')!.documents.find((d: any) => d.kind === 'ConfigMap') as { data: Record<string, string> };
  return cm.data[RATELIMIT_CONFIG_KEY]!;
}

describe('the rendered rate-limit Deployment, run from a ConfigMap-shaped directory', () => {
  let root: string;
  let redis: RedisProcess;
  let service: ServiceProcess;
  let http = 0;
  let metrics = 0;
  let generation = 0;
  const configDir = () => join(root, 'ratelimit', 'config');

  /** What the kubelet does on a ConfigMap update: write a new timestamped directory, then swap `..data` to it in one rename. */
  function publish(text: string): void {
    const dir = `..2026_12_02_00_00_0${generation++}`;
    mkdirSync(join(configDir(), dir));
    writeFileSync(join(configDir(), dir, RATELIMIT_CONFIG_KEY), text);
    symlinkSync(dir, join(configDir(), '..data_tmp'));
    renameSync(join(configDir(), '..data_tmp'), join(configDir(), '..data'));
  }

  async function limitOf(entries: Array<{ key: string; value: string }>): Promise<unknown> {
    const res = await fetch(`http://127.0.0.1:${http}/json`, { method: 'POST', body: JSON.stringify({ domain: 'infergate', descriptors: [{ entries }] }) });
    return ((await res.json()) as { statuses: Array<{ currentLimit?: unknown }> }).statuses[0]!.currentLimit ?? null;
  }

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'infergate-rl-cm-'));
    mkdirSync(configDir(), { recursive: true });
    publish(configMapData(exampleInput()));
    symlinkSync(`..data/${RATELIMIT_CONFIG_KEY}`, join(configDir(), RATELIMIT_CONFIG_KEY));
    redis = await startRedis();
    [http, metrics] = [await freePort(), await freePort()];
    const rendered = (rateLimitDeployment(exampleInput().deployment) as any).spec.template.spec.containers[0];
    const env: Record<string, string> = Object.fromEntries(rendered.env.map((e: { name: string; value: string }) => [e.name, e.value]));
    // Only where things are: loopback, free ports, this test's Redis and directory. Everything else as rendered.
    Object.assign(env, {
      RUNTIME_ROOT: root, REDIS_URL: `127.0.0.1:${redis.port}`, HOST: '127.0.0.1', PORT: String(http), GRPC_HOST: '127.0.0.1', GRPC_PORT: String(await freePort()),
      DEBUG_PORT: String(await freePort()), PROMETHEUS_ADDR: `127.0.0.1:${metrics}`,
    });
    service = await startService('ratelimit', rateLimitBinary(), [], env, async () => (await fetch(`http://127.0.0.1:${http}/healthcheck`)).status === 200);
  }, 30_000);

  afterAll(async () => {
    await service?.stop();
    await redis?.stop();
    rmSync(root, { recursive: true, force: true });
  });

  it('loads the rendered budgets, once (the `..` directories are skipped), and is ready only with them loaded', async () => {
    expect(await limitOf([{ key: 'budget', value: 'free-tenants-hourly' }, { key: 'tenant', value: 'acme' }])).toEqual({ requestsPerUnit: 1000, unit: 'HOUR' });
    expect(await limitOf([{ key: 'budget', value: 'image-model' }])).toEqual({ requestsPerUnit: 600, unit: 'MINUTE' });
    // A descriptor no budget has: no limit (Envoy never sends one).
    expect(await limitOf([{ key: 'budget', value: 'nothing' }])).toBeNull();
    expect(service.logs()).not.toMatch(/error loading|duplicate/i);
  });

  it('serves Prometheus metrics where the pod annotations say (its own counters appear at its first stats flush, 10 s)', async () => {
    const res = await fetch(`http://127.0.0.1:${metrics}/metrics`);
    expect(res.status).toBe(200);
    expect(await res.text()).toMatch(/^# HELP /m);
  });

  it('takes a ConfigMap update without a restart', async () => {
    const pid = service.pid;
    publish(configMapData(variantInput(() => {}, (m) => { m.globalQuotas.budgets[1].limit = { requests: 7, unit: 'second' }; })));
    const deadline = Date.now() + 10_000;
    let limit: unknown;
    while (Date.now() < deadline) {
      limit = await limitOf([{ key: 'budget', value: 'image-model' }]);
      if (JSON.stringify(limit) === JSON.stringify({ requestsPerUnit: 7, unit: 'SECOND' })) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(limit).toEqual({ requestsPerUnit: 7, unit: 'SECOND' });
    expect(service.pid).toBe(pid);
  });
});
