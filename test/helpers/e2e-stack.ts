import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { renderBootstrap } from '../../envoy/bootstrap.js';
import { startAuthzProcess, type AuthzProcess } from './authz-process.js';
import { startEnvoy, type EnvoyHandle } from './envoy.js';
import { requireBundle } from './paths.js';
import { makePki, type Pki } from './pki.js';
import { startUpstream, type Upstream } from './upstream.js';

export interface E2eStack {
  readonly dir: string;
  /** The manifest file the server watches; tests may rewrite it. */
  readonly manifest: string;
  readonly decisionLog: string;
  /** Envoy's JSON access log (envoy/bootstrap.ts ACCESS_LOG_FIELDS). */
  readonly accessLog: string;
  readonly pki: Pki;
  readonly upstream: Upstream;
  readonly authz: AuthzProcess;
  readonly envoy: EnvoyHandle;
  /** Envoy's mTLS listener. */
  readonly port: number;
  /** Another bootstrap on the same PKI, authz server and upstream, with other filters. */
  bootstrap(httpFilters: readonly object[]): string;
  stop(): Promise<void>;
}

export interface E2eOptions {
  /** Directory name prefix under the system temp dir. */
  readonly name: string;
  readonly manifest: string;
  /** Files to write beside the manifest before the server starts (name → text), e.g. the JWKS it names. */
  readonly files?: Record<string, string>;
  /** Client certificates to make: name → SPIFFE ID. */
  readonly clients: Record<string, string>;
  readonly httpFilters?: readonly object[];
  readonly upstream?: 'http1' | 'h2c';
}

/**
 * The end-to-end arrangement every Envoy test uses: a throwaway PKI, an echo
 * upstream, the built infergate-authz as its own process, and the real Envoy
 * (two workers) with an mTLS listener, ext_authz first and any extra filters.
 */
export async function startE2eStack(o: E2eOptions): Promise<E2eStack> {
  const dir = mkdtempSync(join(tmpdir(), `infergate-e2e-${o.name}-`));
  const manifest = join(dir, 'manifest.yaml');
  const decisionLog = join(dir, 'decisions.log');
  const accessLog = join(dir, 'access.log');
  for (const [name, text] of Object.entries(o.files ?? {})) writeFileSync(join(dir, name), text);
  writeFileSync(manifest, o.manifest);
  const pki = makePki(join(dir, 'pki'), o.clients);
  const h2 = o.upstream === 'h2c';
  const upstream = await startUpstream(o.upstream ?? 'http1');
  const authz = await startAuthzProcess(['--bundle', requireBundle(), '--manifest', manifest, '--decision-log', decisionLog, '--log-level', 'info']);
  const bootstrap = (httpFilters: readonly object[]): string =>
    renderBootstrap({
      listenerPort: 0,
      tls: pki,
      extAuthz: { host: '127.0.0.1', port: authz.port },
      httpFilters,
      upstream: { host: '127.0.0.1', port: upstream.port, http2: h2 },
      accessLogPath: accessLog,
    });
  const envoy = await startEnvoy(bootstrap(o.httpFilters ?? []), { concurrency: 2 });
  return {
    dir, manifest, decisionLog, accessLog, pki, upstream, authz, envoy, bootstrap,
    port: envoy.listenerPort('ingress'),
    async stop() {
      await envoy.stop();
      await authz.stop();
      await upstream.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
