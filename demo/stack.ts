import { mkdirSync, readFileSync, renameSync, unwatchFile, watchFile, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { join } from 'node:path';
import { REPO_ROOT as ROOT, requireFile } from '../ext-authz/src/repo-root.js';
import { startEnvoy, type EnvoyHandle } from '../envoy/envoy-process.js';
import { LOCAL_MANIFEST, WORKLOADS, localBootstrap, localFilterChain, type Ports } from '../envoy/local-stack.js';
import { makePki, type Pki } from '../envoy/pki.js';
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
  readonly authz: AuthzProcess;
  stop(): Promise<void>;
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

/** Starts model server, ext-authz and Envoy on loopback, each step announced. */
export async function startStack(ports: Ports, say: (line: string) => void): Promise<Stack> {
  const state = DEMO_STATE;
  const logDir = join(state, 'logs');
  mkdirSync(logDir, { recursive: true });
  const manifest = join(serverDir(state), 'manifest.yaml');
  mkdirSync(serverDir(state), { recursive: true });
  const stopMirror = mirrorManifest(LOCAL_MANIFEST, manifest);
  const chain = localFilterChain(manifest);
  const moduleDir = join(ROOT, 'build/filters');
  for (const f of chain) requireFile(join(moduleDir, `${f.id}.wasm`), `run \`make setup\` to build the ${f.id} filter (filters/build.sh)`);

  say('demo CA and SPIFFE client certificates (.demo/pki, made on first run)');
  const pki = makePki(join(state, 'pki'), WORKLOADS);
  say('demo token issuer: ES256 key, .demo/authz/jwks.json and tokens for a premium and a free tenant (.demo/tokens, made on first run)');
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
    return { pki, tokens, ports: actual, logDir, manifest, envoy, authz, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
