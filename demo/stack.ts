import { mkdirSync, readFileSync, renameSync, unwatchFile, watchFile, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { join } from 'node:path';
import { REPO_ROOT as ROOT, requireFile } from '../ext-authz/src/repo-root.js';
import { startEnvoy, type EnvoyHandle } from '../envoy/envoy-process.js';
import { LOCAL_MANIFEST, WORKLOADS, localBootstrap, localFilterChain, localGlobalQuotas, type Ports } from '../envoy/local-stack.js';
import { makePki, type Pki } from '../envoy/pki.js';
import { startRateLimit } from '../envoy/ratelimit-process.js';
import { startRedis } from '../envoy/redis-process.js';
import { rateLimitServiceYaml } from '../istio/render/global-quotas.js';
import { startAuthzProcess, type AuthzProcess } from './authz-process.js';
import { demoTokens, serverDir, type DemoTokens } from './issuer.js';
import { startModelServer } from './model-server.js';

/** The demo's state: PKI, issuer key, JWKS, tokens, the manifest copy the server reads, logs (git-ignored). */
export const DEMO_STATE = join(ROOT, '.demo');

export interface Stack {
  readonly pki: Pki;
  readonly tokens: DemoTokens;
  readonly ports: Ports;
  readonly logDir: string;
  /** The manifest the server reads: .demo/authz/manifest.yaml, kept a copy of demo/manifest.yaml. */
  readonly manifest: string;
  readonly envoy: EnvoyHandle;
  /**
   * The listener ports of two replicas of the model's sidecar: the demo's
   * Envoy and a second one with the same configuration, both counting the
   * manifest's global quotas in one rate-limit service and one Redis.
   */
  readonly replicas: readonly [number, number];
  readonly authz: AuthzProcess;
  stop(): Promise<void>;
}

/** The second replica's listener and admin ports beside FIXED_PORTS' Envoy (10443, 9901); 0 with ephemeral ports. */
function secondReplicaPorts(ports: Ports): { envoy: number; admin: number } {
  return ports.envoy === 0 ? { envoy: 0, admin: 0 } : { envoy: ports.envoy + 1, admin: ports.admin + 1 };
}

/**
 * Keeps `copy` the same as `source`, now and after every edit, replacing it
 * in one step. The server reads the copy, because the manifest names its JWKS
 * file relative to itself and the demo's JWKS lives in .demo/authz (made
 * there, never committed); the copy is how an edit to demo/manifest.yaml
 * still reaches the running server within a second.
 */
function mirrorManifest(source: string, copy: string): () => void {
  const sync = (): void => {
    let text: string;
    try {
      text = readFileSync(source, 'utf8');
    } catch {
      return; // mid-save (removed and re-created): the next poll copies it
    }
    let current: string | null = null;
    try {
      current = readFileSync(copy, 'utf8');
    } catch {
      // not copied yet
    }
    if (current === text) return;
    const tmp = `${copy}.${process.pid}.tmp`;
    writeFileSync(tmp, text);
    renameSync(tmp, copy);
  };
  sync();
  watchFile(source, { interval: 250, persistent: false }, sync);
  return () => unwatchFile(source, sync);
}

/** Starts model server, ext-authz, Redis, the rate-limit service and two Envoy replicas on loopback, each step announced. */
export async function startStack(ports: Ports, say: (line: string) => void): Promise<Stack> {
  const state = DEMO_STATE;
  const logDir = join(state, 'logs');
  mkdirSync(logDir, { recursive: true });
  const manifest = join(serverDir(state), 'manifest.yaml');
  mkdirSync(serverDir(state), { recursive: true });
  const stopMirror = mirrorManifest(LOCAL_MANIFEST, manifest);
  const chain = localFilterChain(manifest);
  const globalQuotas = localGlobalQuotas(manifest);
  if (globalQuotas === null) throw new Error(`${LOCAL_MANIFEST}: the demo needs its globalQuotas section (the two-replica row)`);
  const moduleDir = join(ROOT, 'build/filters');
  for (const f of chain) requireFile(join(moduleDir, `${f.module}.wasm`), `run \`make setup\` to build the ${f.module} filter (filters/build.sh)`);

  say('demo CA and SPIFFE client certificates (.demo/pki, made on first run)');
  const pki = makePki(join(state, 'pki'), WORKLOADS);
  say('demo token issuer: ES256 key, .demo/authz/jwks.json and tokens for its tenants (.demo/tokens, made on first run)');
  const tokens = await demoTokens(state);

  say('sample model server (KServe V1 :predict and V2 /infer)');
  const model = await startModelServer(ports.model);
  const stops: Array<() => Promise<void>> = [
    async () => stopMirror(),
    () => new Promise<void>((r) => (model.server as Server).close(() => r())),
  ];
  const stop = async (): Promise<void> => {
    for (const s of stops.reverse()) await s().catch(() => undefined);
  };
  try {
    say('infergate-authz (ext_authz gRPC server) with demo/manifest.yaml (its copy in .demo/authz, beside jwks.json)');
    const authz = await startAuthzProcess(
      ['--manifest', manifest, '--decision-log', join(logDir, 'decisions.log'), '--log-level', 'info'],
      `127.0.0.1:${ports.authz}`,
      `127.0.0.1:${ports.metrics}`,
    );
    stops.push(() => authz.stop());
    say('Redis (in memory) and the global rate-limit service (envoyproxy/ratelimit) with the budgets of globalQuotas');
    const redis = await startRedis(ports.redis || undefined);
    stops.push(() => redis.stop());
    // The file `infergate render` writes as ratelimit-config.yaml, from the same function.
    const rateLimit = await startRateLimit({
      config: rateLimitServiceYaml(globalQuotas),
      redisPort: redis.port,
      ...(ports.rateLimit ? { grpcPort: ports.rateLimit } : {}),
      ...(ports.rateLimitHttp ? { httpPort: ports.rateLimitHttp } : {}),
    });
    stops.push(async () => {
      writeFileSync(join(logDir, 'ratelimit.log'), rateLimit.logs());
      await rateLimit.stop();
    });
    say(`two Envoy replicas with mTLS, ext_authz, the wasm filters (V8: ${chain.map((f) => f.name).join(', ')}) and the global quotas`);
    const bootstrapFor = (p: { envoy: number; admin: number }, log: string): string =>
      localBootstrap({
        ports: { ...ports, ...p, authz: authz.port, model: model.port, rateLimit: rateLimit.grpcPort },
        tls: pki,
        moduleDir,
        chain,
        globalQuotas,
        accessLog: join(logDir, log),
      });
    const bootstrap = bootstrapFor({ envoy: ports.envoy, admin: ports.admin }, 'access.log');
    writeFileSync(join(state, 'envoy.yaml'), bootstrap);
    // Both start at once (each takes a second or two to load the filters); one that fails must not leave the other running.
    const started = await Promise.allSettled([
      startEnvoy(bootstrap, { concurrency: 2 }),
      startEnvoy(bootstrapFor(secondReplicaPorts(ports), 'access-replica-2.log'), { concurrency: 1 }),
    ]);
    started.forEach((r, i) => {
      if (r.status === 'rejected') return;
      const log = i === 0 ? 'envoy.log' : 'envoy-replica-2.log';
      stops.push(async () => {
        writeFileSync(join(logDir, log), r.value.logs());
        await r.value.stop();
      });
    });
    const failed = started.find((r) => r.status === 'rejected');
    if (failed) throw failed.reason;
    const [envoy, second] = started.map((r) => (r as PromiseFulfilledResult<EnvoyHandle>).value) as [EnvoyHandle, EnvoyHandle];
    const actual: Ports = {
      envoy: envoy.listenerPort('ingress'), admin: envoy.adminPort, authz: authz.port, metrics: authz.metricsPort, model: model.port,
      rateLimit: rateLimit.grpcPort, rateLimitHttp: rateLimit.httpPort, redis: redis.port,
    };
    const replicas = [actual.envoy, second.listenerPort('ingress')] as const;
    return { pki, tokens, ports: actual, replicas, logDir, manifest, envoy, authz, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
