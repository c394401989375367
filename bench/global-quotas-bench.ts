// Global quotas benchmark: what Envoy's global check (the ratelimit filter
// calling envoyproxy/ratelimit, which counts in Redis) adds to a request, against
// the same request through the same Envoy with only the guard filter. One run,
// one Envoy process with two listeners (guard only; guard + the global quotas
// exactly as istio/render/global-quotas.ts builds them), rounds interleaved
// (the order flips each round), driven by wrk.
//
//   node dist/bench/global-quotas-bench.js [--duration 10] [--warmup 2] [--rounds 5]
//        [--connections 32] [--body 1024] [--markdown FILE]
//
// bench/global-quotas.sh installs wrk, builds and runs this; run that, not this.
//
// Each round measures both listeners twice:
//  - saturated: wrk -c<connections>, throughput (and latency under load);
//  - one at a time: wrk -c1, the latency a single request sees, p50 and p99:
//    the added latency of the global check is the gRPC round trip to the
//    service plus its Redis round trip.
// Ratios and differences are taken within a round, then the median over rounds.
//
// Layout on 2 cores: the Envoy under test (--concurrency 1) on CPU 0; wrk, the
// backend Envoy (direct_response), the rate-limit service and Redis share CPU
// 1. The budget (one per caller, a deny budget) is far above the load, so
// nothing is refused (checked): the allowed path is what is measured.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { REPO_ROOT as ROOT } from '../ext-authz/src/repo-root.js';
import { startRateLimit } from '../envoy/ratelimit-process.js';
import { startRedis } from '../envoy/redis-process.js';
import { freePort } from '../envoy/service-process.js';
import type { GlobalQuotas } from '../istio/render/global-quotas-schema.js';
import { quotaFilters, quotaRateLimits, rateLimitHeaderFilter, rateLimitServiceYaml } from '../istio/render/global-quotas.js';
import { ENVOY_TYPES, backendConfig, writePostScript, cpuTicks, envoyListener, median, requireCommand, startEnvoyPinned, toMs, waitReady } from './envoy-bench-kit.js';

interface Args { duration: number; warmup: number; rounds: number; connections: number; body: number; markdown: string | null }

function parseArgs(argv: string[]): Args {
  const a: Args = { duration: 10, warmup: 2, rounds: 5, connections: 32, body: 1024, markdown: null };
  for (let i = 0; i < argv.length; i += 2) {
    const k = argv[i]!;
    const v = argv[i + 1];
    if (v === undefined) throw new Error(`missing value for ${k}`);
    if (k === '--markdown') a.markdown = v;
    else if (['--duration', '--warmup', '--rounds', '--connections', '--body'].includes(k)) a[k.slice(2) as 'duration'] = Number(v);
    else throw new Error(`unknown option ${k}`);
  }
  return a;
}

const T = {
  ...ENVOY_TYPES,
  httpOptions: 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
};

const BIG = 1_000_000;
/** requests_per_unit is a uint32: the most a budget can be, far above a day of this load. */
const QUOTAS: GlobalQuotas = {
  timeout: '0.25s',
  budgets: [{ name: 'bench', per: 'caller', tiers: null, tenants: null, callers: null, paths: null, limit: { requests: 4_294_967_295, unit: 'day' }, failureMode: 'deny' }],
};
const RL_CLUSTER = 'ratelimit';

// The guard as the filters bench runs it: keyed on the header ext_authz sets, budgets far above the load.
const GUARD = {
  name: 'envoy.filters.http.wasm',
  typed_config: {
    '@type': T.wasm,
    config: {
      name: 'guard', root_id: 'guard',
      vm_config: { vm_id: 'guard', runtime: 'envoy.wasm.runtime.v8', code: { local: { filename: join(ROOT, 'build/filters/guard.wasm') } } },
      configuration: { '@type': T.str, value: JSON.stringify({ rateLimit: { identity: 'header:x-infergate-caller', default: { perSecond: BIG, burst: BIG }, maxCallers: 10000 }, payloadLimit: { defaultMaxBytes: 1_048_576 } }) },
      fail_open: false,
    },
  },
};

function cluster(name: string, port: number, http2: boolean): object {
  return {
    name, type: 'STATIC', connect_timeout: '1s',
    load_assignment: { cluster_name: name, endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: port } } } }] }] },
    ...(http2 ? { typed_extension_protocol_options: { 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': { '@type': T.httpOptions, explicit_http_config: { http2_protocol_options: {} } } } } : {}),
  };
}

const listener = envoyListener;

/** The Envoy under test: `guard` (guard only) and `global` (the header filter, the guard, the ratelimit filter, the route's rate limits). */
function frontConfig(admin: number, ports: { guard: number; global: number }, backend: number, rateLimit: number): string {
  return stringify({
    admin: { address: { socket_address: { address: '127.0.0.1', port_value: admin } } },
    static_resources: {
      listeners: [
        listener('guard', ports.guard, [GUARD], { route: { cluster: 'backend' } }),
        listener('global', ports.global, [rateLimitHeaderFilter(), GUARD, ...quotaFilters(QUOTAS, RL_CLUSTER)], { route: { cluster: 'backend', rate_limits: quotaRateLimits(QUOTAS) } }),
      ],
      clusters: [cluster('backend', backend, false), cluster(RL_CLUSTER, rateLimit, true)],
    },
  }, { version: '1.1' });
}

interface Result { rps: number; p50: number; p99: number; requests: number; non2xx: number; envoyUs: number; serviceUs: number }


/** wrk's output, run on CPU 1 without blocking this process (it must keep reading the service's and Redis's output). */
function wrk(port: number, seconds: number, connections: number, script: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('taskset', ['-c', '1', 'wrk', '-t1', `-c${connections}`, `-d${seconds}s`, '--latency', '-s', script, `http://127.0.0.1:${port}/v1/models/bench:predict`], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`wrk exited with ${code}`))));
  });
}

/** One wrk run; CPU per request of the Envoy under test and of the service + Redis. */
async function runWrk(port: number, seconds: number, connections: number, script: string, envoyPid: number, servicePids: number[]): Promise<Result> {
  const before = [cpuTicks(envoyPid), servicePids.reduce((s, p) => s + cpuTicks(p), 0)];
  const out = await wrk(port, seconds, connections, script);
  const envoyTicks = cpuTicks(envoyPid) - before[0]!;
  const serviceTicks = servicePids.reduce((s, p) => s + cpuTicks(p), 0) - before[1]!;
  const errors = /Socket errors:.*/.exec(out)?.[0];
  if (errors) throw new Error(`wrk reported ${errors}`);
  const non2xx = Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(out)?.[1] ?? 0);
  const requests = Number(/(\d+) requests in/.exec(out)?.[1]);
  return {
    rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1]),
    p50: toMs(/^\s+50%\s+(\S+)/m.exec(out)?.[1] ?? ''),
    p99: toMs(/^\s+99%\s+(\S+)/m.exec(out)?.[1] ?? ''),
    requests,
    non2xx,
    envoyUs: (envoyTicks * 10_000) / requests,
    serviceUs: (serviceTicks * 10_000) / requests,
  };
}


/** Pins every thread of a running process (and the threads it starts later) to `cpu`. */
function pin(pid: number, cpu: number): void {
  execFileSync('taskset', ['-a', '-cp', String(cpu), String(pid)], { stdio: 'ignore' });
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  requireCommand('wrk', 'wrk', 'bench/global-quotas.sh');
  requireCommand('taskset', 'util-linux', 'bench/global-quotas.sh');
  if (!existsSync(join(ROOT, 'build/filters/guard.wasm'))) throw new Error('build/filters/guard.wasm is missing: run filters/build.sh');
  const dir = mkdtempSync(join(tmpdir(), 'infergate-global-quotas-bench-'));
  const script = join(dir, 'post.lua');
  // The caller header is what ext_authz forwards for a verified workload: the global budget's key, and the guard's.
  writePostScript(script, args.body);
  const redis = await startRedis();
  const rl = await startRateLimit({ config: rateLimitServiceYaml(QUOTAS), redisPort: redis.port });
  const procs: ChildProcess[] = [];
  try {
    pin(redis.pid, 1);
    pin(rl.pid, 1);
    const [frontAdmin, backAdmin, backPort, guardPort, globalPort] = [await freePort(), await freePort(), await freePort(), await freePort(), await freePort()];
    procs.push(startEnvoyPinned(1, backendConfig(backAdmin, backPort), dir, 'backend'));
    const front = startEnvoyPinned(0, frontConfig(frontAdmin, { guard: guardPort, global: globalPort }, backPort, rl.grpcPort), dir, 'front');
    procs.push(front);
    await Promise.all([waitReady(frontAdmin), waitReady(backAdmin)]);
    const ports = { guard: guardPort, global: globalPort } as const;
    // A 200 from each before measuring (the first call to the service also opens its connections):
    // a configuration that refuses would otherwise show up only as wrk's non-2xx count.
    for (const [name, port] of Object.entries(ports)) {
      const deadline = Date.now() + 5000;
      for (;;) {
        const r = await fetch(`http://127.0.0.1:${port}/v1/models/bench:predict`, { method: 'POST', body: 'a', headers: { 'x-infergate-caller': 'spiffe://cluster.local/ns/bench/sa/client' } });
        if (r.status === 200) break;
        if (Date.now() > deadline) throw new Error(`${name}: answers ${r.status}: ${await r.text()}\nthe rate-limit service's log:\n${rl.logs().slice(-3000)}`);
        await new Promise((res) => setTimeout(res, 100));
      }
    }
    const names = ['guard', 'global'] as const;
    const loaded: Record<string, Result[]> = { guard: [], global: [] };
    const single: Record<string, Result[]> = { guard: [], global: [] };
    const service = [rl.pid, redis.pid];
    console.log(`global quotas bench: POST ${args.body} B, one caller; saturated wrk -t1 -c${args.connections} and one-at-a-time wrk -c1, ${args.duration}s each x ${args.rounds} rounds (+${args.warmup}s warm-up); envoy under test --concurrency 1 on CPU 0; wrk, backend, ratelimit and Redis on CPU 1`);
    for (let r = 0; r < args.rounds; r++) {
      const order = r % 2 === 0 ? names : ([...names].reverse() as unknown as typeof names);
      for (const n of order) {
        if (args.warmup > 0) {
          const w = await runWrk(ports[n], args.warmup, args.connections, script, front.pid!, service);
          if (w.non2xx > 0) console.log(`  round ${r + 1} ${n}: warm-up, ${w.non2xx} of ${w.requests} not 2xx`);
        }
        const l = await runWrk(ports[n], args.duration, args.connections, script, front.pid!, service);
        const s = await runWrk(ports[n], Math.max(2, Math.round(args.duration / 2)), 1, script, front.pid!, service);
        for (const x of [l, s]) {
          if (x.non2xx === 0) continue;
          const stats = (await (await fetch(`http://127.0.0.1:${frontAdmin}/stats`)).text()).split('\n').filter((line) => /ratelimit|downstream_rq_[45]xx|_rq_timeout|upstream_rq_[45]/.test(line) && !/: 0$/.test(line));
          throw new Error(`${n}: ${x.non2xx} of ${x.requests} responses not 2xx; the bench must measure the allowed path. Envoy's counters:\n  ${stats.join('\n  ')}\nthe rate-limit service's log:\n${rl.logs().slice(-3000)}`);
        }
        loaded[n]!.push(l);
        single[n]!.push(s);
        console.log(`  round ${r + 1} ${n.padEnd(6)} saturated ${l.rps.toFixed(0).padStart(6)} req/s p50 ${l.p50.toFixed(2)} p99 ${l.p99.toFixed(2)} ms | one at a time p50 ${(s.p50 * 1000).toFixed(0)} µs p99 ${(s.p99 * 1000).toFixed(0)} µs | envoy ${l.envoyUs.toFixed(1)} µs/req, ratelimit+redis ${l.serviceUs.toFixed(1)} µs/req`);
      }
    }
    const paired = (set: Record<string, Result[]>, f: (g: Result, b: Result) => number) => median(set.global!.map((g, i) => f(g, set.guard![i]!)));
    const med = (set: Record<string, Result[]>, n: string, f: (x: Result) => number) => median(set[n]!.map(f));
    const us = (ms: number) => (ms * 1000).toFixed(0);
    const table = [
      `${args.rounds} rounds, interleaved; each figure the median over rounds (differences and ratios taken within a round).`,
      '',
      '| request through Envoy | one at a time: p50 µs | p99 µs | saturated: req/s | p50 ms | p99 ms | Envoy CPU µs/request | ratelimit + Redis CPU µs/request |',
      '|---|---:|---:|---:|---:|---:|---:|---:|',
      ...names.map((n) => `| ${n === 'guard' ? 'guard filter only' : 'guard + global check (ratelimit filter → service → Redis)'} | ${us(med(single, n, (x) => x.p50))} | ${us(med(single, n, (x) => x.p99))} | ${med(loaded, n, (x) => x.rps).toFixed(0)} | ${med(loaded, n, (x) => x.p50).toFixed(2)} | ${med(loaded, n, (x) => x.p99).toFixed(2)} | ${med(loaded, n, (x) => x.envoyUs).toFixed(1)} | ${n === 'guard' ? '–' : med(loaded, n, (x) => x.serviceUs).toFixed(1)} |`),
      '',
      `Added by the global check: p50 +${us(paired(single, (g, b) => g.p50 - b.p50))} µs, p99 +${us(paired(single, (g, b) => g.p99 - b.p99))} µs (one request at a time); ` +
        `throughput ${paired(loaded, (g, b) => g.rps / b.rps).toFixed(3)}× the guard-only listener's (saturated, min–max over rounds ` +
        `${Math.min(...loaded.global!.map((g, i) => g.rps / loaded.guard![i]!.rps)).toFixed(3)}–${Math.max(...loaded.global!.map((g, i) => g.rps / loaded.guard![i]!.rps)).toFixed(3)}); ` +
        `Envoy CPU +${paired(loaded, (g, b) => g.envoyUs - b.envoyUs).toFixed(1)} µs/request.`,
      '',
    ];
    console.log('\n' + table.join('\n'));
    if (args.markdown) writeFileSync(args.markdown, table.join('\n') + '\n');
  } finally {
    for (const p of procs) p.kill('SIGTERM');
    await rl.stop();
    await redis.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(`global quotas bench: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
