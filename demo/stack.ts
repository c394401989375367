import { mkdirSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { join } from 'node:path';
import { REPO_ROOT as ROOT, requireFile } from '../ext-authz/src/repo-root.js';
import { renderBootstrap, wasmHttpFilter } from '../envoy/bootstrap.js';
import { startEnvoy, type EnvoyHandle } from '../envoy/envoy-process.js';
import { makePki, type Pki } from '../envoy/pki.js';
import { startAuthzProcess, type AuthzProcess } from './authz-process.js';
import { type ChainFilter, filterChain } from '../istio/render/filter-chain.js';
import { loadRenderInput } from '../istio/render/load-input.js';
import { startModelServer } from './model-server.js';

/** The example workloads of the scene, each with its own SPIFFE client certificate. */
export const WORKLOADS = {
  'api-gateway': 'spiffe://cluster.local/ns/gateway/sa/api-gateway',
  'web-frontend': 'spiffe://cluster.local/ns/web/sa/frontend',
  'batch-scorer': 'spiffe://cluster.local/ns/batch/sa/scorer',
  compromised: 'spiffe://cluster.local/ns/ml/sa/compromised',
  'foreign-agent': 'spiffe://partner.example/ns/agents/sa/crawler',
} as const;
export type Workload = keyof typeof WORKLOADS;

export const DEMO_MANIFEST = join(ROOT, 'demo/manifest.yaml');

/**
 * The filters come from the deployment section of the same manifest the
 * authorization server reads, through the same filterChain that `infergate
 * render` turns into WasmPlugins and EnvoyFilters: same form (guard by
 * default), same order, same configs, validated the same way.
 */
export function demoFilterChain(manifest = DEMO_MANIFEST): ChainFilter[] {
  const { deployment } = loadRenderInput(manifest);
  const { payloadLimit, rateLimit } = deployment.filters;
  if (payloadLimit === null || rateLimit === null) throw new Error(`${manifest}: the demo needs deployment.filters.payloadLimit and .rateLimit`);
  return filterChain(deployment);
}

/** The chain as local Envoy HTTP filters, each loading `<moduleDir>/<id>.wasm`; Envoy's filter name is the chain name. */
export function localWasmFilters(chain: readonly ChainFilter[], moduleDir: string): object[] {
  return chain.map((f) => wasmHttpFilter(f.name, `${moduleDir}/${f.id}.wasm`, f.config));
}

export interface Ports {
  readonly envoy: number;
  readonly admin: number;
  readonly authz: number;
  readonly metrics: number;
  readonly model: number;
}
export const FIXED_PORTS: Ports = { envoy: 10443, admin: 9901, authz: 9191, metrics: 9464, model: 8080 };
export const EPHEMERAL_PORTS: Ports = { envoy: 0, admin: 0, authz: 0, metrics: 0, model: 0 };

export interface Stack {
  readonly pki: Pki;
  readonly ports: Ports;
  readonly logDir: string;
  readonly envoy: EnvoyHandle;
  readonly authz: AuthzProcess;
  stop(): Promise<void>;
}

/** Starts model server, ext-authz and Envoy on loopback, each step announced. */
export async function startStack(ports: Ports, say: (line: string) => void): Promise<Stack> {
  const state = join(ROOT, '.demo');
  const logDir = join(state, 'logs');
  mkdirSync(logDir, { recursive: true });
  const chain = demoFilterChain();
  const moduleDir = join(ROOT, 'build/filters');
  for (const f of chain) requireFile(join(moduleDir, `${f.id}.wasm`), `run \`make setup\` to build the ${f.id} filter (filters/build.sh)`);

  say('demo CA and SPIFFE client certificates (.demo/pki, made on first run)');
  const pki = makePki(join(state, 'pki'), WORKLOADS);

  say('sample model server (KServe V1 :predict and V2 /infer)');
  const model = await startModelServer(ports.model);
  const stops: Array<() => Promise<void>> = [() => new Promise<void>((r) => (model.server as Server).close(() => r()))];
  const stop = async (): Promise<void> => {
    for (const s of stops.reverse()) await s().catch(() => undefined);
  };
  try {
    say('infergate-authz (ext_authz gRPC server) with demo/manifest.yaml');
    const authz = await startAuthzProcess(
      ['--manifest', DEMO_MANIFEST, '--decision-log', join(logDir, 'decisions.log'), '--log-level', 'info'],
      `127.0.0.1:${ports.authz}`,
      `127.0.0.1:${ports.metrics}`,
    );
    stops.push(() => authz.stop());
    say(`Envoy with mTLS, ext_authz and the wasm filters (V8): ${chain.map((f) => f.name).join(', ')}`);
    const bootstrap = renderBootstrap({
      listenerPort: ports.envoy,
      adminPort: ports.admin,
      tls: pki,
      extAuthz: { host: '127.0.0.1', port: authz.port },
      httpFilters: localWasmFilters(chain, moduleDir),
      upstream: { host: '127.0.0.1', port: model.port },
      accessLogPath: join(logDir, 'access.log'),
    });
    writeFileSync(join(state, 'envoy.yaml'), bootstrap);
    const envoy = await startEnvoy(bootstrap, { concurrency: 2 });
    stops.push(async () => {
      writeFileSync(join(logDir, 'envoy.log'), envoy.logs());
      await envoy.stop();
    });
    const actual: Ports = { envoy: envoy.listenerPort('ingress'), admin: envoy.adminPort, authz: authz.port, metrics: authz.metricsPort, model: model.port };
    return { pki, ports: actual, logDir, envoy, authz, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
