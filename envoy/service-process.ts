import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';

/**
 * A helper process of the local stack (Redis, the rate-limit service) on
 * loopback: started, waited for until a probe says it serves, stopped, and
 * restartable on the same ports.
 */
export interface ServiceProcess {
  readonly pid: number;
  logs(): string;
  kill(signal: NodeJS.Signals): void;
  exited(): Promise<void>;
  stop(): Promise<void>;
}

/** A free loopback port (bound then released: good enough for one process about to take it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

export async function startService(
  what: string,
  command: string,
  args: readonly string[],
  env: Record<string, string>,
  ready: () => Promise<boolean>,
  timeoutMs = 15_000,
): Promise<ServiceProcess> {
  const child: ChildProcess = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let out = '';
  const keep = (d: Buffer): void => {
    out = (out + d.toString()).slice(-20_000);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  let exitedAlready = false;
  const exit = new Promise<void>((resolve) => child.on('exit', () => ((exitedAlready = true), resolve())));
  child.on('error', (err) => keep(Buffer.from(`${what}: ${err.message}\n`)));
  const stop = async (): Promise<void> => {
    if (exitedAlready) return;
    child.kill('SIGTERM');
    child.kill('SIGCONT');
    const t = setTimeout(() => child.kill('SIGKILL'), 3000);
    await exit;
    clearTimeout(t);
  };
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (exitedAlready) throw new Error(`${what} exited during start-up:\n${out}`);
    if (await ready().catch(() => false)) break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`${what} did not start within ${timeoutMs} ms:\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    pid: child.pid!,
    logs: () => out,
    kill: (signal) => {
      if (!exitedAlready) child.kill(signal);
    },
    exited: () => exit,
    stop,
  };
}
