import { execFileSync } from 'node:child_process';
import { cpus } from 'node:os';
import { envoyBinary } from '../../envoy/envoy-process.js';
import { DEFAULTS } from '../../ext-authz/src/server.js';
import { CACHE_SIZE } from './cache-window.js';
import type { Opts } from './options.js';
import { loadavg } from './proc.js';
import { BODY, defaultLimit, GREEDY, greedyLimit, grpcHotSet, HOT_MODELS, HTTPS_CALLERS } from './request-mix.js';

function envoyVersion(): string {
  try {
    return /version: \S+?\/([0-9.]+)/.exec(execFileSync(envoyBinary(), ['--version'], { encoding: 'utf8' }))?.[1] ?? '?';
  } catch {
    return '?';
  }
}

/** The header of the report: how this run measures, with its figures (machine, rates, mix, budgets). */
export function method(o: Opts, only: Opts['only']): string[] {
  const cpu = cpus();
  const lines = [
    `soak: ${o.minutes} min per phase, memory sampled every ${o.sampleSeconds} s (t=0 is when load starts), latency and throughput per ${o.bucketSeconds} s ("minute" rows), warm-up ${o.warmupSeconds} s`,
    `machine: ${cpu.length} CPUs (${cpu[0]?.model.trim() ?? 'unknown'}), node ${process.version}, load average at start ${loadavg()}`,
    'load: open loop; a load generator in its own process sends request i at t0 + i/rate, whatever is still in flight, and times it from that scheduled instant',
    `      (no coordinated omission); deadline ${o.timeoutMs} ms per request; "lag" = how late the generator itself sent (CPU starvation of the client, not the server)`,
  ];
  if (only !== 'envoy') {
    lines.push(
      `server phase: built infergate-authz CLI as its own process, test/fixtures/manifests/example.yaml, cache ${CACHE_SIZE} entries / TTL ${DEFAULTS.cacheTtlSeconds} s (defaults),`,
      `      decision log ${o.decisionLog === 'file' ? 'to a file (JSON line per check, not rotated)' : 'off'}; ${o.rate} Check/s over one gRPC channel (grpc-js), ` +
        `${((1 - o.missShare) * 100).toFixed(0)}% from a hot set of ${grpcHotSet().length} requests (8 identities x ${HOT_MODELS} models, allows and denies),`,
      `      ${(o.missShare * 100).toFixed(0)}% distinct (a new SPIFFE ID every time, half allowed, half denied): cache misses, new entries, LRU eviction once full`,
    );
  }
  if (only !== 'server') {
    const mix = HTTPS_CALLERS.map((c) => `${c.who} ${(c.share * 100).toFixed(0)}%`).join(', ');
    lines.push(
      `envoy phase: Envoy ${envoyVersion()} (--concurrency 2, mTLS listener requiring SPIFFE client certificates), ext_authz -> infergate-authz (demo/manifest.yaml),`,
      `      guard filter (the build the soak manifest needs, build/filters/guard-no-response-body.wasm: no response cap; demo manifest's payload limit; rate limit ${defaultLimit(o.envoyRate).perSecond}/s burst ${defaultLimit(o.envoyRate).burst} per caller, greedy ${greedyLimit(o.envoyRate).perSecond}/s burst ${greedyLimit(o.envoyRate).burst}),`,
      `      echo upstream (node:http, in this process); ${o.envoyRate} HTTPS/1.1 POST/s (${Buffer.byteLength(BODY)} B JSON) over keep-alive connections, one pool per identity: ${mix};`,
      `      greedy sends ${(o.envoyRate * GREEDY.share).toFixed(0)}/s against its ${greedyLimit(o.envoyRate).perSecond}/s (429 expected), frontend has no rule (403 expected); ${(o.missShare * 100).toFixed(0)}% of the allowed callers' requests go to a new model path (ext_authz cache misses)`,
    );
  }
  lines.push(
    'memory: VmRSS from /proc/<pid>/status; the server also reports V8 heap used/total, external memory and cache entries (its /metrics), and runs with',
    '      node --trace-gc so the heap that survives each full GC is recorded; Envoy reports its allocator (admin /memory)',
    'latency: client p50/p99 over answered requests (server: all correct decisions; envoy: 2xx only), log histogram with 2% buckets; server view: its own',
    '      infergate_check_duration_seconds histogram over the same minute, interpolated within its buckets (coarse: 5, 10, 25, 50, 100, 250 µs, ...)',
    'CPU: % of one CPU per process from /proc/<pid>/stat; "others" = busy time on the machine not charged to our processes (other work on this machine)',
  );
  return lines;
}
