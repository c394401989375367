import { spawn, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync } from 'node:fs';

/**
 * A Docker engine for the test: the one already running if `docker info`
 * answers, otherwise a dockerd the test starts itself on its own socket and
 * data root, and stops afterwards. Nothing else is ever stopped. Missing
 * Debian packages are installed with apt-get when running as root (as
 * scripts/setup.sh does for its tools); otherwise the test fails saying which.
 */

/** Where a dockerd started by the test keeps its socket, state and images (kept between runs: the cache). */
export const OWN_ENGINE = {
  socket: '/run/infergate-docker/docker.sock',
  execRoot: '/run/infergate-docker/exec',
  dataRoot: '/var/lib/infergate-docker',
  log: '/run/infergate-docker/dockerd.log',
  pidfile: '/run/infergate-docker/dockerd.pid',
} as const;

export const DEBIAN_PACKAGES = 'docker.io docker-compose debootstrap';

export interface Engine {
  /** The environment for docker, docker-compose and build-bases.sh (DOCKER_HOST set when the engine is the test's own). */
  readonly env: NodeJS.ProcessEnv;
  /** True when this run started dockerd (and so will stop it). */
  readonly startedHere: boolean;
  /** The compose command: `docker compose` (v2) if the CLI has it, else `docker-compose` (v1). */
  readonly compose: readonly string[];
  stop(): Promise<void>;
}

export function run(cmd: string, args: readonly string[], env: NodeJS.ProcessEnv = process.env, timeoutMs = 600_000): SpawnSyncReturns<string> {
  return spawnSync(cmd, args, { env, encoding: 'utf8', timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 });
}

function has(cmd: string): boolean {
  return run('sh', ['-c', `command -v ${cmd}`]).status === 0;
}

function answers(env: NodeJS.ProcessEnv): boolean {
  return run('docker', ['info', '--format', '{{.ServerVersion}}'], env, 20_000).status === 0;
}

/** apt-get install, as set-up does: only as root; otherwise say what to install. */
function aptInstall(missing: string[], say: (line: string) => void): void {
  const how = `apt-get install ${DEBIAN_PACKAGES} (as root), or install Docker with compose and debootstrap`;
  if (process.getuid?.() !== 0 || !has('apt-get')) throw new Error(`${missing.join(', ')} missing: ${how}`);
  say(`${missing.join(', ')} missing: apt-get install ${DEBIAN_PACKAGES}`);
  for (const args of [['update', '-qq'], ['install', '-y', '-qq', '--no-install-recommends', ...DEBIAN_PACKAGES.split(' ')]]) {
    const r = run('apt-get', args, { ...process.env, DEBIAN_FRONTEND: 'noninteractive' });
    if (r.status !== 0) throw new Error(`apt-get ${args.join(' ')} failed:\n${r.stderr}\n(${how})`);
  }
}

function composeCommand(env: NodeJS.ProcessEnv, say: (line: string) => void): string[] {
  if (run('docker', ['compose', 'version'], env, 20_000).status === 0) return ['docker', 'compose'];
  if (has('docker-compose')) return ['docker-compose'];
  aptInstall(['docker compose (v2) and docker-compose (v1)'], say);
  return ['docker-compose'];
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export async function ensureEngine(say: (line: string) => void): Promise<Engine> {
  const missing = ['docker', 'debootstrap'].filter((c) => !has(c));
  if (missing.length > 0) aptInstall(missing, say);

  if (answers(process.env)) {
    say(`Docker engine already running${process.env.DOCKER_HOST ? ` at ${process.env.DOCKER_HOST}` : ''}; using it, leaving it running`);
    return { env: process.env, startedHere: false, compose: composeCommand(process.env, say), stop: async () => undefined };
  }
  const env = { ...process.env, DOCKER_HOST: `unix://${OWN_ENGINE.socket}` };
  if (answers(env)) {
    say(`the test's own dockerd (${OWN_ENGINE.socket}) is already running, from an earlier run; using it, leaving it running`);
    return { env, startedHere: false, compose: composeCommand(env, say), stop: async () => undefined };
  }
  if (!has('dockerd')) aptInstall(['dockerd'], say);

  // No bridge and no iptables: containers use the host's network (the compose
  // file asks for that), so the engine changes nothing in the host's network set-up.
  mkdirSync(OWN_ENGINE.execRoot, { recursive: true });
  mkdirSync(OWN_ENGINE.dataRoot, { recursive: true });
  const log = openSync(OWN_ENGINE.log, 'a');
  const child = spawn(
    'dockerd',
    ['--host', `unix://${OWN_ENGINE.socket}`, '--data-root', OWN_ENGINE.dataRoot, '--exec-root', OWN_ENGINE.execRoot,
      '--pidfile', OWN_ENGINE.pidfile, '--iptables=false', '--bridge=none'],
    { detached: true, stdio: ['ignore', log, log] },
  );
  closeSync(log);
  child.unref();
  const pid = child.pid!;
  const deadline = Date.now() + 60_000;
  while (!answers(env)) {
    if (!alive(pid) || Date.now() > deadline) {
      if (alive(pid)) process.kill(pid, 'SIGKILL');
      throw new Error(`dockerd did not start (log ${OWN_ENGINE.log}):\n${readFileSync(OWN_ENGINE.log, 'utf8').split('\n').slice(-20).join('\n')}`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  const driver = run('docker', ['info', '--format', '{{.Driver}}'], env).stdout.trim();
  say(`started dockerd (pid ${pid}, storage driver ${driver}, data root ${OWN_ENGINE.dataRoot}); it stops when the test ends`);
  return {
    env,
    startedHere: true,
    compose: composeCommand(env, say),
    stop: async () => {
      if (!alive(pid)) return;
      process.kill(pid, 'SIGTERM');
      const until = Date.now() + 30_000;
      while (alive(pid) && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
      if (alive(pid)) process.kill(pid, 'SIGKILL');
    },
  };
}
