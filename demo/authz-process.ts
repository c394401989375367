import { spawn } from 'node:child_process';
import { REPO_ROOT as ROOT, requireFile } from '../ext-authz/src/repo-root.js';


/** How the process ended, once it has been reaped. */
export interface AuthzExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export interface AuthzProcess {
  readonly port: number;
  readonly metricsPort: number;
  /** The OS process id. */
  readonly pid: number;
  logs(): string;
  /** Sends a signal (SIGKILL, SIGSTOP, SIGCONT, ...) to the process. */
  kill(signal: NodeJS.Signals): void;
  /** Resolves once the process has exited and been reaped. */
  exited(): Promise<AuthzExit>;
  /**
   * A new process with the same arguments on the same gRPC port (and a fresh
   * metrics port), e.g. after this one was killed. Waits for it to serve.
   */
  restart(): Promise<AuthzProcess>;
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
  const exit = new Promise<AuthzExit>((resolve) => child.on('exit', (code, signal) => ((exited = true), resolve({ code, signal }))));
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
  const grpcPort = ports.grpc;
  const sameGrpcPort = `${listen.slice(0, listen.lastIndexOf(':'))}:${grpcPort}`;
  const freshMetricsPort = metrics === 'off' ? metrics : `${metrics.slice(0, metrics.lastIndexOf(':'))}:0`;
  return {
    port: grpcPort,
    metricsPort: ports.metrics,
    pid: child.pid!,
    logs: () => out,
    kill: (signal) => {
      if (!exited) child.kill(signal);
    },
    exited: () => exit,
    restart: () => startAuthzProcess(args, sameGrpcPort, freshMetricsPort),
    stop: async () => {
      if (!exited) {
        child.kill('SIGTERM');
        // A stopped (SIGSTOP) process does not act on SIGTERM until it runs again.
        child.kill('SIGCONT');
        const t = setTimeout(() => child.kill('SIGKILL'), 3000);
        await exit;
        clearTimeout(t);
      }
    },
  };
}
