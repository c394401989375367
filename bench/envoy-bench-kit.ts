// What the Envoy benchmarks (filters-bench.ts, global-quotas-bench.ts) share:
// their Envoy configuration pieces, a pinned Envoy process, readiness, CPU
// accounting and wrk's latency format.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { REPO_ROOT as ROOT } from '../ext-authz/src/repo-root.js';

/** Fails with how to install `cmd` (Debian package `pkg`); `script` is the bench's shell entry, which installs it as root. */
export function requireCommand(cmd: string, pkg: string, script: string): void {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
  } catch {
    throw new Error(`${cmd} is not installed: apt-get install -y ${pkg} (${script} does this when run as root)`);
  }
}

export const ENVOY_TYPES = {
  hcm: 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
  router: 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router',
  wasm: 'type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm',
  str: 'type.googleapis.com/google.protobuf.StringValue',
} as const;

/** A loopback listener: one HTTP connection manager, `filters` then the router, one catch-all route; `chain` adds to its filter chain (a transport socket). */
export function envoyListener(name: string, port: number, filters: object[], route: object, chain: object = {}): object {
  return {
    name,
    address: { socket_address: { address: '127.0.0.1', port_value: port } },
    filter_chains: [{
      ...chain,
      filters: [{
        name: 'envoy.filters.network.http_connection_manager',
        typed_config: {
          '@type': ENVOY_TYPES.hcm, stat_prefix: name,
          route_config: { virtual_hosts: [{ name: 'all', domains: ['*'], routes: [{ match: { prefix: '/' }, ...route }] }] },
          http_filters: [...filters, { name: 'envoy.filters.http.router', typed_config: { '@type': ENVOY_TYPES.router } }],
        },
      }],
    }],
  };
}

/** The upstream of the Envoy under test: another Envoy answering 200 "ok" itself. */
export function backendConfig(admin: number, port: number): string {
  return stringify({
    admin: { address: { socket_address: { address: '127.0.0.1', port_value: admin } } },
    static_resources: { listeners: [envoyListener('backend', port, [], { direct_response: { status: 200, body: { inline_string: 'ok' } } })] },
  });
}

/** Envoy with one worker thread, on CPU `cpu`, from `yaml` written to `<dir>/<name>.yaml`. */
export function startEnvoyPinned(cpu: number, yaml: string, dir: string, name: string): ChildProcess {
  const file = join(dir, `${name}.yaml`);
  writeFileSync(file, yaml);
  const envoy = join(ROOT, '.tools/bin/envoy');
  if (!existsSync(envoy)) throw new Error(`${envoy} is missing: run make setup`);
  return spawn('taskset', ['-c', String(cpu), envoy, '-c', file, '--disable-hot-restart', '--concurrency', '1', '--log-level', 'error'], { stdio: ['ignore', 'ignore', 'inherit'] });
}

export async function waitReady(admin: number): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    try {
      if ((await fetch(`http://127.0.0.1:${admin}/ready`)).status === 200) return;
    } catch { /* not up yet */ }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`envoy (admin ${admin}) did not become ready`);
}

/** utime + stime of a process, all threads, in clock ticks (USER_HZ, 100 on Linux). */
export function cpuTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]);
}

/** One of wrk's latencies ("812.00us", "4.49ms", "1.02s") in ms. */
export function toMs(v: string): number {
  const m = /^([\d.]+)(us|ms|s)$/.exec(v.trim());
  if (!m) throw new Error(`cannot parse wrk latency ${v}`);
  const n = Number(m[1]);
  return m[2] === 'us' ? n / 1000 : m[2] === 's' ? n * 1000 : n;
}

export const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** A wrk Lua script POSTing `body` bytes of JSON as the verified caller ext_authz would forward; `extra` lines follow. */
export function writePostScript(file: string, body: number, extra: readonly string[] = []): void {
  writeFileSync(file, [
    'wrk.method = "POST"',
    `wrk.body = string.rep("a", ${body})`,
    'wrk.headers["content-type"] = "application/json"',
    'wrk.headers["x-infergate-caller"] = "spiffe://cluster.local/ns/bench/sa/client"',
    ...extra,
  ].join('\n'));
}
