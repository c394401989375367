import { mkdirSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { join } from 'node:path';
import { REPO_ROOT as ROOT, requireFile } from '../ext-authz/src/repo-root.js';
import { startEnvoy, type EnvoyHandle } from '../envoy/envoy-process.js';
import { LOCAL_MANIFEST, WORKLOADS, localBootstrap, localFilterChain, type Ports } from '../envoy/local-stack.js';
import { makePki, type Pki } from '../envoy/pki.js';
import { startAuthzProcess, type AuthzProcess } from './authz-process.js';
import { startModelServer } from './model-server.js';


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
  const chain = localFilterChain();
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
      ['--manifest', LOCAL_MANIFEST, '--decision-log', join(logDir, 'decisions.log'), '--log-level', 'info'],
      `127.0.0.1:${ports.authz}`,
      `127.0.0.1:${ports.metrics}`,
    );
    stops.push(() => authz.stop());
    say(`Envoy with mTLS, ext_authz and the wasm filters (V8): ${chain.map((f) => f.name).join(', ')}`);
    const bootstrap = localBootstrap({
      ports: { ...ports, authz: authz.port, model: model.port },
      tls: pki,
      moduleDir,
      chain,
      accessLog: join(logDir, 'access.log'),
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
