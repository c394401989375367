import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { SOAK_MANIFEST } from './request-mix.js';
import { renderBootstrap } from '../../envoy/bootstrap.js';
import { envoyBinary, startEnvoy } from '../../envoy/envoy-process.js';
import { makePki } from '../../envoy/pki.js';
import { serverArgs, startServer } from './authz-server.js';
import { cacheWindow, lateWindowNote } from './cache-window.js';
import { startEcho, stopEcho } from './echo-upstream.js';
import { envoyCounters, envoyMemory } from './envoy-admin.js';
import { guardFilters } from './guard-filters.js';
import type { PhaseResult } from './phase-result.js';
import { childPid } from './proc.js';
import { HTTPS_CALLERS, httpsDistinctShare } from './request-mix.js';
import { runPhase, type PhaseContext } from './run-phase.js';
import { serverCounters, serverExtra } from './server-metrics.js';
import { withStops } from './stops.js';

/**
 * The Envoy phase: the real Envoy (mTLS listener, ext_authz to a fresh
 * infergate-authz with the demo manifest, the guard filter, the echo
 * upstream) driven with HTTPS POSTs at --envoy-rate from the SPIFFE callers.
 */
export function envoyPhase(ctx: PhaseContext): Promise<PhaseResult> {
  const { o, tmp } = ctx;
  const decisionLog = o.decisionLog === 'file' ? join(tmp, 'decisions-envoy-phase.log') : null;
  return withStops(async (stops) => {
    envoyBinary();
    const filters = guardFilters(o.envoyRate);
    const pki = makePki(join(tmp, 'pki'), Object.fromEntries(HTTPS_CALLERS.map((c) => [c.who, c.id])));
    const echo = await startEcho();
    stops.push(() => stopEcho(echo.server));
    const authz = await startServer(serverArgs(SOAK_MANIFEST, decisionLog));
    stops.push(() => authz.stop());
    const envoy = await startEnvoy(renderBootstrap({
      listenerPort: 0,
      tls: pki,
      extAuthz: { host: '127.0.0.1', port: authz.port },
      httpFilters: filters,
      upstream: { host: '127.0.0.1', port: echo.port },
    }), { concurrency: 2, logLevel: 'warn' });
    stops.push(() => envoy.stop());
    // EnvoyHandle does not tell its pid; the Envoy is the child started with --disable-hot-restart.
    const envoyPid = childPid('envoy', '--disable-hot-restart');
    const logsBefore = envoy.logs().length;
    const w = cacheWindow(o, o.envoyRate, httpsDistinctShare(o.missShare));
    const result = await runPhase(ctx, {
      name: 'envoy',
      title: 'Envoy (mTLS, ext_authz, guard) + infergate-authz, HTTPS',
      watched: [{ name: 'envoy', pid: envoyPid }, { name: 'server', pid: authz.pid }],
      memory: [
        { name: 'envoy', label: 'Envoy RSS', windowStart: o.warmupSeconds, why: `from t=${o.warmupSeconds}s (after the warm-up)` },
        { name: 'server', label: 'infergate-authz RSS', windowStart: w.start, why: w.why },
      ],
      serverMetricsPort: authz.metricsPort,
      extraSample: async () => {
        const mem = await envoyMemory(envoy.adminPort);
        return { ...(await serverExtra(authz.metricsPort)), ...mem };
      },
      worker: {
        kind: 'https', port: envoy.listenerPort('ingress'), rate: o.envoyRate,
        pki: { ca: pki.caCert, clients: Object.fromEntries(HTTPS_CALLERS.map((c) => [c.who, pki.client(c.who)])) },
      },
      fullGcs: authz.fullGcs,
      alive: () => authz.alive() ?? (existsSync(`/proc/${envoyPid}`) ? null : `envoy (pid ${envoyPid}) died: ${envoy.logs().slice(-2000)}`),
    }, o.envoyRate, decisionLog);
    result.counters = { ...(await serverCounters(authz.metricsPort)), ...(await envoyCounters(envoy.adminPort)) };
    const warnings = envoy.logs().slice(logsBefore).split('\n').filter((l) => /\[(warning|error|critical)\]/.test(l));
    if (warnings.length) result.notes.push(`Envoy logged ${warnings.length} warning/error line(s); the first: ${warnings[0]!.slice(0, 300)}`);
    const late = lateWindowNote(o, w.start, "the server's");
    if (late) result.notes.push(late);
    return result;
  });
}
