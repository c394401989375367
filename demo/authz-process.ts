import { spawn } from 'node:child_process';
import { REPO_ROOT as ROOT, requireFile } from '../ext-authz/src/repo-root.js';


export interface AuthzProcess {
  readonly port: number;
  readonly metricsPort: number;
  logs(): string;
  stop(): Promise<void>;
}

/**
 * Runs the built CLI (`dist/ext-authz/src/cli.js`) as its own process, the
 * way an operator would, on port 0, and reads the bound ports from its
 * start-up log line.
 */
export async function startAuthzProcess(args: string[], listen = '127.0.0.1:0', metrics = '127.0.0.1:0'): Promise<AuthzProcess> {
  const cli = requireFile(`${ROOT}dist/ext-authz/src/cli.js`, 'run `make setup` to build the TypeScript');
  const child = spawn(process.execPath, [cli, '--listen', listen, '--metrics', metrics, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  let exited = false;
  const exit = new Promise<void>((resolve) => child.on('exit', () => ((exited = true), resolve())));
  const deadline = Date.now() + 10_000;
  let ports: { grpc: number; metrics: number } | null = null;
  while (Date.now() < deadline && ports === null && !exited) {
    const line = out.split('\n').find((l) => l.includes('infergate-authz serving'));
    if (line) {
      const rec = JSON.parse(line) as { grpc: string; metrics: string };
      ports = { grpc: Number(rec.grpc.split(':').pop()), metrics: Number(rec.metrics.split(':').pop()) };
    } else {
      await new Promise((r) => setTimeout(r, 25));
    }
  }
  if (ports === null) {
    child.kill('SIGKILL');
    throw new Error(`infergate-authz did not start:\n${out}`);
  }
  return {
    port: ports.grpc,
    metricsPort: ports.metrics,
    logs: () => out,
    stop: async () => {
      if (!exited) {
        child.kill('SIGTERM');
        const t = setTimeout(() => child.kill('SIGKILL'), 3000);
        await exit;
        clearTimeout(t);
      }
    },
  };
}
