import { join } from 'node:path';
import { REPO_ROOT as ROOT } from '../../ext-authz/src/repo-root.js';
import { serverArgs, startServer } from './authz-server.js';
import { cacheWindow, lateWindowNote } from './cache-window.js';
import type { PhaseResult } from './phase-result.js';
import { runPhase, type PhaseContext } from './run-phase.js';
import { serverCounters, serverExtra } from './server-metrics.js';
import { withStops } from './stops.js';

const EXAMPLE_MANIFEST = join(ROOT, 'test/fixtures/manifests/example.yaml');

/** The server phase: the built infergate-authz CLI alone, with the example manifest, driven with gRPC Check at --rate. */
export function serverPhase(ctx: PhaseContext): Promise<PhaseResult> {
  const { o, tmp } = ctx;
  const decisionLog = o.decisionLog === 'file' ? join(tmp, 'decisions-server-phase.log') : null;
  return withStops(async (stops) => {
    const authz = await startServer(serverArgs(EXAMPLE_MANIFEST, decisionLog));
    stops.push(() => authz.stop());
    const w = cacheWindow(o, o.rate, o.missShare);
    const result = await runPhase(ctx, {
      name: 'server',
      title: 'infergate-authz alone, gRPC Check',
      watched: [{ name: 'server', pid: authz.pid }],
      memory: [{ name: 'server', label: 'infergate-authz RSS', windowStart: w.start, why: w.why }],
      serverMetricsPort: authz.metricsPort,
      extraSample: () => serverExtra(authz.metricsPort),
      worker: { kind: 'grpc', port: authz.port, rate: o.rate },
      alive: () => authz.alive(),
      fullGcs: authz.fullGcs,
    }, o.rate, decisionLog);
    result.counters = await serverCounters(authz.metricsPort);
    const late = lateWindowNote(o, w.start, 'the');
    if (late) result.notes.push(late);
    return result;
  });
}
