import { ROOT } from '../helpers/paths.js';
import { run, type Engine } from './engine.js';

/** The compose file users run, run as it is, under a project name of the test's own. */
export const COMPOSE_FILE = `${ROOT}envoy/docker-compose.yaml`;
export const PROJECT = 'infergate-docker-test';

export interface Compose {
  /** Runs `compose -f envoy/docker-compose.yaml -p PROJECT ARGS`; throws with its output unless it succeeds. */
  (args: readonly string[], timeoutMs?: number): string;
  /** The container id of a service. */
  id(service: string): string;
  /** The last lines of every service's log, for failure messages. */
  logs(): string;
}

export function compose(engine: Engine, vars: Record<string, string>): Compose {
  const env = { ...engine.env, ...vars };
  const [cmd, ...pre] = engine.compose as [string, ...string[]];
  const base = [...pre, '-f', COMPOSE_FILE, '-p', PROJECT];
  const exec = (args: readonly string[], timeoutMs = 600_000): string => {
    const r = run(cmd, [...base, ...args], env, timeoutMs);
    if (r.status !== 0) throw new Error(`${engine.compose.join(' ')} ${args.join(' ')} failed (${r.status ?? r.signal}):\n${r.stdout}\n${r.stderr}`);
    return r.stdout + r.stderr;
  };
  return Object.assign(exec, {
    id: (service: string) => {
      const id = run(cmd, [...base, 'ps', '-q', service], env).stdout.trim();
      if (!id) throw new Error(`no container for service ${service}`);
      return id;
    },
    logs: () => {
      const r = run(cmd, [...base, 'logs', '--no-color', '--tail', '30'], env);
      return r.stdout + r.stderr;
    },
  });
}

/** `docker ARGS` against the engine; throws with its output unless it succeeds. */
export function docker(engine: Engine, args: readonly string[], timeoutMs = 120_000): string {
  const r = run('docker', args, engine.env, timeoutMs);
  if (r.status !== 0) throw new Error(`docker ${args.join(' ')} failed (${r.status ?? r.signal}):\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}
