import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { REPO_ROOT as ROOT, requireFile } from '../../ext-authz/src/repo-root.js';
import { now } from './clock.js';
import { fullGc, isTraceGcLine, type FullGc } from './trace-gc.js';

/** How to get the built CLI when it is missing. */
export const BUILD_HINT = 'run `bash scripts/build.sh` (or bench/soak.sh, which builds first)';

export function serverArgs(manifest: string, decisionLog: string | null): string[] {
  // Defaults otherwise (cache, TTL, manifest watching), as an operator would run it.
  return ['--manifest', manifest, '--decision-log', decisionLog ?? 'off', '--log-level', 'info'];
}

export interface AuthzServer {
  readonly pid: number;
  readonly port: number;
  readonly metricsPort: number;
  readonly fullGcs: FullGc[];
  alive(): string | null;
  stop(): Promise<void>;
}

/**
 * Runs the built CLI (dist/ext-authz/src/cli.js) as its own process, as
 * demo/authz-process.ts does, on port 0, with node's --trace-gc: after each
 * full GC it prints the heap that survived, the one figure that tells retained
 * memory (a leak) from V8 merely keeping a big heap. Only those lines and a
 * short tail of the output are kept, so a long soak holds no growing log here
 * (which is why this does not use demo/authz-process.ts, which keeps it all).
 */
export async function startServer(args: string[]): Promise<AuthzServer> {
  const cli = requireFile(join(ROOT, 'dist/ext-authz/src/cli.js'), BUILD_HINT);
  const child = spawn(process.execPath, ['--trace-gc', cli, '--listen', '127.0.0.1:0', '--metrics', '127.0.0.1:0', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const fullGcs: FullGc[] = [];
  let tail = '';
  let ports: { grpc: number; metrics: number } | null = null;
  const lines = (stream: NodeJS.ReadableStream): void => {
    let partial = '';
    stream.on('data', (d: Buffer) => {
      const parts = (partial + d.toString()).split('\n');
      partial = parts.pop() ?? '';
      for (const l of parts) {
        const gc = fullGc(l, now());
        if (gc) {
          fullGcs.push(gc);
          continue;
        }
        if (isTraceGcLine(l)) continue; // other --trace-gc lines (scavenges)
        if (ports === null && l.includes('infergate-authz serving')) {
          const rec = JSON.parse(l) as { grpc: string; metrics: string };
          ports = { grpc: Number(rec.grpc.split(':').pop()), metrics: Number(rec.metrics.split(':').pop()) };
        }
        tail = (tail + l + '\n').slice(-4000);
      }
    });
  };
  lines(child.stdout);
  lines(child.stderr);
  let exited = false;
  const exit = new Promise<void>((resolve) => child.on('exit', () => ((exited = true), resolve())));
  const deadline = Date.now() + 15_000;
  while (ports === null && !exited && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
  if (ports === null) {
    child.kill('SIGKILL');
    throw new Error(`infergate-authz did not start:\n${tail}`);
  }
  const { grpc: port, metrics: metricsPort } = ports;
  return {
    pid: child.pid!, port, metricsPort, fullGcs,
    alive: () => (exited ? `infergate-authz (pid ${child.pid}) died:\n${tail}` : null),
    stop: async () => {
      if (exited) return;
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 3000);
      await exit;
      clearTimeout(t);
    },
  };
}
