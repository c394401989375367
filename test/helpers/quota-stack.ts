import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { localBootstrap, localFilterChain, localGlobalQuotas } from '../../envoy/local-stack.js';
import { startRateLimit, type RateLimitProcess } from '../../envoy/ratelimit-process.js';
import { startRedis, type RedisProcess } from '../../envoy/redis-process.js';
import { builtFilter } from '../filters/built.js';
import { startAuthzProcess, type AuthzProcess } from './authz-process.js';
import { startEnvoy, type EnvoyHandle } from './envoy.js';
import { ROOT, requireBundle, requireTool } from './paths.js';
import { makePki, type Pki } from './pki.js';
import { startUpstream, type Upstream } from './upstream.js';

/**
 * Two replicas of one model behind one global quota, every part real: a
 * throwaway PKI, an echo upstream (the model both replicas serve), the built
 * infergate-authz, one Redis, one envoyproxy/ratelimit service started with
 * the file `infergate render` writes for the manifest (ratelimit-config.yaml),
 * and two Envoys from the project's local bootstrap (envoy/local-stack.ts:
 * ext_authz, the manifest's guard filter, the ratelimit filters and route rate
 * limits of its globalQuotas), each calling the same service.
 */
export interface QuotaStack {
  readonly dir: string;
  readonly pki: Pki;
  readonly upstream: Upstream;
  readonly authz: AuthzProcess;
  /** The text of ratelimit-config.yaml as `infergate render --out` wrote it: what the service was started with. */
  readonly renderedConfig: string;
  /** The file the running service reads (envoy/ratelimit-process.ts puts its config there). */
  serviceConfigFile(): string;
  redis(): RedisProcess;
  rateLimit(): RateLimitProcess;
  /** The mTLS listener port of each replica. */
  readonly replicas: readonly [number, number];
  readonly envoys: readonly [EnvoyHandle, EnvoyHandle];
  /** Starts the rate-limit service again on the same ports (after a kill). */
  restartRateLimit(): Promise<void>;
  /**
   * Stops Redis, runs `whileDown`, then starts an empty Redis on the same
   * port: what a crash or a rescheduled pod of an in-memory Redis does.
   */
  restartRedis(whileDown?: () => Promise<void>): Promise<void>;
  stop(): Promise<void>;
}

export interface QuotaStackOptions {
  readonly name: string;
  /** The manifest: access rules for the server, deployment.filters and globalQuotas for render and Envoy. */
  readonly manifest: string;
  /** Files beside it (the JWKS it names). */
  readonly files?: Record<string, string>;
  readonly clients: Record<string, string>;
}

/** `infergate render --manifest FILE --out DIR`, the built CLI as an operator runs it; returns DIR. */
export function renderManifest(manifest: string, out: string): string {
  const cli = requireTool(`${ROOT}dist/cli/infergate.js`, 'run `make setup` (or scripts/build.sh) to build the CLI');
  const r = spawnSync(process.execPath, [cli, 'render', '--manifest', manifest, '--out', out], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`infergate render failed (${String(r.status)}):\n${r.stderr}`);
  return out;
}

export async function startQuotaStack(o: QuotaStackOptions): Promise<QuotaStack> {
  const dir = mkdtempSync(join(tmpdir(), `infergate-e2e-${o.name}-`));
  const manifest = join(dir, 'manifest.yaml');
  for (const [name, text] of Object.entries(o.files ?? {})) writeFileSync(join(dir, name), text);
  writeFileSync(manifest, o.manifest);
  const renderedConfig = readFileSync(join(renderManifest(manifest, join(dir, 'rendered')), 'ratelimit-config.yaml'), 'utf8');
  const chain = localFilterChain(manifest);
  const globalQuotas = localGlobalQuotas(manifest);
  if (globalQuotas === null) throw new Error('startQuotaStack: the manifest has no globalQuotas section');
  for (const f of chain) builtFilter(f.id);

  const pki = makePki(join(dir, 'pki'), o.clients);
  const stops: Array<() => Promise<void>> = [];
  const stop = async (): Promise<void> => {
    for (const s of stops.reverse()) await s().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const upstream = await startUpstream();
    stops.push(() => upstream.close());
    // info: the start-up line startAuthzProcess reads the bound ports from is logged at info.
    const authz = await startAuthzProcess(['--bundle', requireBundle(), '--manifest', manifest, '--decision-log', join(dir, 'decisions.log'), '--log-level', 'info']);
    stops.push(() => authz.stop());
    let redis = await startRedis();
    stops.push(() => redis.stop());
    let rl = await startRateLimit({ config: renderedConfig, redisPort: redis.port });
    stops.push(() => rl.stop());
    const replica = async (i: number): Promise<EnvoyHandle> => {
      const envoy = await startEnvoy(
        localBootstrap({
          ports: { envoy: 0, admin: 0, authz: authz.port, metrics: 0, model: upstream.port, rateLimit: rl.grpcPort },
          tls: pki,
          moduleDir: join(ROOT, 'build/filters'),
          accessLog: join(dir, `access-${i}.log`),
          chain,
          globalQuotas,
        }),
        // One worker each: two replicas of a model, not one Envoy's threads.
        { concurrency: 1 },
      );
      stops.push(() => envoy.stop());
      return envoy;
    };
    const envoys = [await replica(0), await replica(1)] as const;
    return {
      dir, pki, upstream, authz, renderedConfig, envoys,
      replicas: [envoys[0].listenerPort('ingress'), envoys[1].listenerPort('ingress')],
      serviceConfigFile: () => join(rl.configDir, 'infergate.yaml'),
      redis: () => redis,
      rateLimit: () => rl,
      async restartRateLimit() {
        await rl.stop();
        rl = await rl.restart();
      },
      async restartRedis(whileDown) {
        await redis.stop();
        await whileDown?.();
        redis = await redis.restart();
      },
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
