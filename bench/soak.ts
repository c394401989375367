// Soak benchmark: does infergate hold its memory and latency under steady
// load for minutes on end? Two phases, each with its own processes:
//
//   server  the built infergate-authz CLI (its own process, the example
//           manifest, decision log to a file) driven with Authorization/Check
//           over gRPC at a fixed rate;
//   envoy   the real Envoy (mTLS listener, ext_authz to a fresh infergate-authz
//           with the demo manifest, then the guard filter, then an echo
//           upstream) driven with HTTPS POSTs at a fixed rate from a few
//           SPIFFE identities, one of which goes over its rate limit.
//
//   node dist/bench/soak.js [--minutes 10] [--sample-seconds 30] [--rate 1000]
//        [--envoy-rate 500] [--only server|envoy] [--json FILE] [--markdown FILE]
//        [--bucket-seconds 60] [--warmup-seconds 120] [--miss-share 0.2]
//        [--decision-log file|off] [--timeout-ms 5000]
//        [--max-growth-mib 10] [--p99-factor 2]
//
// bench/soak.sh builds first; run that, or `bash scripts/build.sh` and this.
//
// Load is open loop: a load generator in a child process of its own (this
// script, re-run with --worker) sends request i at t0 + i/rate whether or not
// earlier ones were answered, and times each request from that scheduled
// instant, so a server stall shows up as latency of every request scheduled
// during it instead of silently lowering the rate (no coordinated omission).
// It reports how late it sent (its own lag), so a load generator starved of
// CPU can be told apart from a slow server. ghz is not used: its -r mode
// paces workers and times from the actual send, and it cannot mix requests
// the way this does.
//
// Every --sample-seconds the parent reads the RSS of the server (and of
// Envoy) from /proc/<pid>/status VmRSS, the server's V8 heap, external
// memory and cache size from its /metrics (prom-client's process metrics),
// and Envoy's allocator view from its admin /memory. The server runs with
// node --trace-gc, and the heap left after each full GC is recorded: that is
// what a leak raises, while RSS also grows when V8 merely decides to keep a
// bigger heap. Every --bucket-seconds
// (a "minute") it records the client-observed latency (p50/p99 from a
// log-bucketed histogram, 2% resolution), the server's own
// infergate_check_duration_seconds histogram (interpolated within its
// buckets), achieved throughput, errors, and the CPU used by each of our
// processes and by everything else on the machine (from /proc/stat).
//
// Verdicts (precise definitions are printed with the results):
//   memory flat     over the window from --warmup-seconds (and, for a server,
//                   from the moment its decision cache is full by
//                   construction) to the end: growth (median of the last 3
//                   samples minus median of the first 3) <= --max-growth-mib,
//                   and no monotone trend (Kendall's tau of RSS against time
//                   >= 0.6 together with a least-squares slope that adds up to
//                   >= 1 MiB over the window);
//   latency steady  client p99 of the last third of the post-warm-up
//                   minutes <= --p99-factor x the p99 of the first third.
// The warm-up is 2 minutes by default: on the 2-core VM this was written on,
// at 300 checks/s the server's heap after full GC was flat at ~25 MiB from
// 30 s on, but V8 kept growing its committed heap (to ~220 MiB) and RSS rose
// from 275 to 309 MiB between 60 and 110 s, then stayed at 309 MiB.
// The exit code is 1 on any unexpected response or a process that died; the
// verdicts are printed, not turned into the exit code.
//
// The code is in bench/soak/, a small module for each part, named for it
// (options, load generator and its senders, request mix, samplers, latency
// histogram, verdicts, the phases' set-up, report); main.ts runs the soak.
import { fileURLToPath } from 'node:url';

/** This script: the load generator is this script again, run with --worker. */
const SELF = fileURLToPath(import.meta.url);

// Each role loads only its own modules: the load generator does not carry the bench's.
if (process.argv[2] === '--worker') {
  import('./soak/load-generator.js').then((g) => g.runLoadGenerator()).catch((err: unknown) => {
    console.error(`soak load generator: ${err instanceof Error ? err.stack : String(err)}`);
    process.exit(1);
  });
} else {
  import('./soak/main.js').then((m) => m.main(process.argv.slice(2), SELF)).catch((err: unknown) => {
    console.error(`soak: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  });
}
