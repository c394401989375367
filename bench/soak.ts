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
import { execFileSync, fork, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, type Server } from 'node:http';
import { Agent, request as httpsRequest } from 'node:https';
import type { AddressInfo } from 'node:net';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import { DEMO_MANIFEST, demoFilterChain, localWasmFilters } from '../demo/stack.js';
import { renderBootstrap } from '../envoy/bootstrap.js';
import { envoyBinary, startEnvoy, type EnvoyHandle } from '../envoy/envoy-process.js';
import { makePki } from '../envoy/pki.js';
import { authorizationService } from '../ext-authz/src/protos.js';
import { REPO_ROOT as ROOT, requireFile } from '../ext-authz/src/repo-root.js';

const SELF = fileURLToPath(import.meta.url);
const EXAMPLE_MANIFEST = join(ROOT, 'test/fixtures/manifests/example.yaml');
const HOST = 'model-serving.ml.svc.cluster.local';
const MIB = 1024 * 1024;
/** The server's default decision cache size (infergate-authz --cache-size); the soak does not change it. */
const CACHE_SIZE = 10_000;
const TREND_TAU = 0.6;
const TREND_RISE = 1; // MiB over the window, from the fitted slope
const HOT_MODELS = 10;

// ---------------------------------------------------------------- options

interface Opts {
  minutes: number;
  sampleSeconds: number;
  bucketSeconds: number;
  warmupSeconds: number;
  rate: number;
  envoyRate: number;
  missShare: number;
  timeoutMs: number;
  decisionLog: 'file' | 'off';
  maxGrowthMiB: number;
  p99Factor: number;
  only: 'server' | 'envoy' | null;
  json: string | null;
  markdown: string | null;
}

function parseOpts(argv: string[]): Opts {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      minutes: { type: 'string', default: '10' },
      'sample-seconds': { type: 'string', default: '30' },
      'bucket-seconds': { type: 'string', default: '60' },
      'warmup-seconds': { type: 'string', default: '120' },
      rate: { type: 'string', default: '1000' },
      'envoy-rate': { type: 'string', default: '500' },
      'miss-share': { type: 'string', default: '0.2' },
      'timeout-ms': { type: 'string', default: '5000' },
      'decision-log': { type: 'string', default: 'file' },
      'max-growth-mib': { type: 'string', default: '10' },
      'p99-factor': { type: 'string', default: '2' },
      only: { type: 'string' },
      json: { type: 'string' },
      markdown: { type: 'string' },
    },
  });
  const num = (flag: string, v: string, min: number, max = Infinity): number => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n) || n < min || n > max) throw new Error(`--${flag}: expected a number from ${min}${max < Infinity ? ` to ${max}` : ''}, got "${v}"`);
    return n;
  };
  if (values.only !== undefined && values.only !== 'server' && values.only !== 'envoy') throw new Error(`--only: expected server or envoy, got "${values.only}"`);
  if (values['decision-log'] !== 'file' && values['decision-log'] !== 'off') throw new Error(`--decision-log: expected file or off, got "${values['decision-log']}"`);
  const o: Opts = {
    minutes: num('minutes', values.minutes, 0.05),
    sampleSeconds: num('sample-seconds', values['sample-seconds'], 0.5),
    bucketSeconds: num('bucket-seconds', values['bucket-seconds'], 1),
    warmupSeconds: num('warmup-seconds', values['warmup-seconds'], 0),
    rate: num('rate', values.rate, 1, 100_000),
    envoyRate: num('envoy-rate', values['envoy-rate'], 1, 100_000),
    missShare: num('miss-share', values['miss-share'], 0, 1),
    timeoutMs: num('timeout-ms', values['timeout-ms'], 100),
    decisionLog: values['decision-log'],
    maxGrowthMiB: num('max-growth-mib', values['max-growth-mib'], 0),
    p99Factor: num('p99-factor', values['p99-factor'], 1),
    only: (values.only as Opts['only']) ?? null,
    json: values.json ?? null,
    markdown: values.markdown ?? null,
  };
  if (o.warmupSeconds >= o.minutes * 60) throw new Error(`--warmup-seconds (${o.warmupSeconds}) must be shorter than the phase (--minutes ${o.minutes})`);
  return o;
}

// ---------------------------------------------------------------- latency histogram

/** Log-bucketed histogram of milliseconds: bucket k holds (R^(k-1), R^k] µs; mergeable and small. */
const R = 1.02;
const LN_R = Math.log(R);

class Hist {
  readonly counts = new Map<number, number>();
  n = 0;

  add(ms: number): void {
    const us = ms * 1000;
    const k = us <= 1 ? 0 : Math.ceil(Math.log(us) / LN_R);
    this.counts.set(k, (this.counts.get(k) ?? 0) + 1);
    this.n++;
  }

  merge(other: Hist): this {
    for (const [k, c] of other.counts) this.counts.set(k, (this.counts.get(k) ?? 0) + c);
    this.n += other.n;
    return this;
  }

  /** Nearest-rank quantile (0..1) in ms; the value reported is the bucket's geometric middle. */
  quantile(q: number): number {
    if (this.n === 0) return NaN;
    const rank = Math.max(1, Math.ceil(q * this.n));
    let seen = 0;
    for (const k of [...this.counts.keys()].sort((a, b) => a - b)) {
      seen += this.counts.get(k)!;
      if (seen >= rank) return k === 0 ? 0.0005 : Math.pow(R, k - 0.5) / 1000;
    }
    return NaN;
  }

  toJSON(): Array<[number, number]> {
    return [...this.counts.entries()];
  }

  static from(pairs: Array<[number, number]>): Hist {
    const h = new Hist();
    for (const [k, c] of pairs) {
      h.counts.set(k, c);
      h.n += c;
    }
    return h;
  }
}

// ---------------------------------------------------------------- the load generator (child process)

/** One request of a plan: what to send and what a correct answer is. */
interface GrpcReq { principal: string; method: string; path: string; allow: boolean }
interface HttpsReq { who: string; path: string; expect: readonly number[]; ok: number; distinct: boolean }

interface BucketReport {
  index: number;
  sent: number;
  answered: number;
  /** Answers that were correct and the thing measured: allow/deny as expected (server), 2xx (Envoy). */
  ok: number;
  /** Correct answers that turn the caller away: denies (server); 403 and 429 (Envoy), by status. */
  rejected: Record<string, number>;
  errors: number;
  errorKinds: Record<string, number>;
  hist: Array<[number, number]>;
  /** How late the generator sent, in ms after the scheduled instant: max, and sends more than 5 ms late. */
  lagMaxMs: number;
  lateSends: number;
}

interface WorkerStart {
  kind: 'grpc' | 'https';
  port: number;
  rate: number;
  t0: number;
  durationMs: number;
  bucketMs: number;
  timeoutMs: number;
  missShare: number;
  /** https: client certificates by identity name. */
  pki?: { ca: string; clients: Record<string, { cert: string; key: string }> };
}

/** Epoch milliseconds with sub-ms resolution, comparable across processes. */
const now = (): number => performance.timeOrigin + performance.now();

/** Small deterministic PRNG (mulberry32), so every run sends the same sequence. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Server phase mix, against test/fixtures/manifests/example.yaml. The hot set
 * (repeated: cache hits once seen, re-evaluated when their TTL runs out) and
 * the distinct requests (a new identity every time: a miss, a new cache
 * entry, LRU eviction once the cache is full).
 */
function grpcHotSet(): GrpcReq[] {
  const gw = 'spiffe://cluster.local/ns/gateway/sa/api-gateway';
  const out: GrpcReq[] = [];
  for (let m = 0; m < HOT_MODELS; m++) {
    out.push({ principal: gw, method: 'POST', path: `/v1/models/m${m}:predict`, allow: true }); // gateway-predicts
    out.push({ principal: gw, method: 'POST', path: `/v2/models/m${m}/infer`, allow: true });
    for (let s = 0; s < 5; s++) out.push({ principal: `spiffe://cluster.local/ns/batch/sa/scorer-${s}`, method: 'GET', path: `/v1/models/m${m}`, allow: true }); // batch-reads
    out.push({ principal: 'spiffe://cluster.local/ns/web/sa/frontend', method: 'POST', path: `/v1/models/m${m}:predict`, allow: false }); // no rule
  }
  out.push({ principal: gw, method: 'GET', path: '/admin/stats', allow: false }); // no-admin
  out.push({ principal: 'spiffe://cluster.local/ns/monitoring/sa/prober', method: 'GET', path: '/healthz', allow: true }); // mesh-probes
  return out;
}

function grpcDistinct(n: number): GrpcReq {
  return n % 2 === 0
    ? { principal: `spiffe://cluster.local/ns/batch/sa/job-${n}`, method: 'GET', path: `/v1/models/m${n % HOT_MODELS}`, allow: true }
    : { principal: `spiffe://cluster.local/ns/tenant-${n}/sa/client`, method: 'POST', path: `/v1/models/m${n % HOT_MODELS}:predict`, allow: false };
}

/** Envoy phase identities (demo/manifest.yaml rules), share of the load, and the answers that are correct for each. */
const HTTPS_CALLERS = [
  { who: 'api-gateway', id: 'spiffe://cluster.local/ns/gateway/sa/api-gateway', share: 0.40, expect: [200] },
  { who: 'scorer-a', id: 'spiffe://cluster.local/ns/batch/sa/scorer-a', share: 0.25, expect: [200] },
  { who: 'scorer-b', id: 'spiffe://cluster.local/ns/batch/sa/scorer-b', share: 0.25, expect: [200] },
  { who: 'greedy', id: 'spiffe://cluster.local/ns/batch/sa/greedy', share: 0.08, expect: [200, 429] },
  { who: 'frontend', id: 'spiffe://cluster.local/ns/web/sa/frontend', share: 0.02, expect: [403] },
] as const;
/**
 * The greedy caller's budget (a guard rateLimit rule): half of what it sends,
 * so about half its requests get 429 at any --envoy-rate; everyone else gets
 * the default, many times what they send.
 */
function greedyLimit(rate: number): { perSecond: number; burst: number } {
  const perSecond = Math.max(1, Math.round((rate * HTTPS_CALLERS.find((c) => c.who === 'greedy')!.share) / 2));
  return { perSecond, burst: 2 * perSecond };
}
const defaultLimit = (rate: number): { perSecond: number; burst: number } => ({ perSecond: Math.max(100, 4 * rate), burst: Math.max(200, 8 * rate) });
const BODY = JSON.stringify({ instances: [[0.1, 0.2, 0.3, 0.4], [0.5, 0.6, 0.7, 0.8]] });

function httpsPick(r: () => number, distinct: boolean, n: number): HttpsReq {
  const x = r();
  let acc = 0;
  let c: (typeof HTTPS_CALLERS)[number] = HTTPS_CALLERS[0];
  for (const k of HTTPS_CALLERS) {
    acc += k.share;
    if (x < acc) { c = k; break; }
  }
  const m = Math.floor(r() * HOT_MODELS);
  // Distinct paths only for callers that are allowed, so each one is a new cache entry behind a 200.
  const fresh = distinct && c.expect[0] === 200 && c.who !== 'greedy';
  const path = fresh ? `/v1/models/d${n}:predict`
    : c.who === 'api-gateway' && r() < 0.5 ? `/v2/models/m${m}/infer` : `/v1/models/m${m}:predict`;
  return { who: c.who, path, expect: c.expect, ok: 200, distinct: fresh };
}

/** Messages from the parent, queued from the start so none is missed while the worker sets up. */
const inbox: unknown[] = [];
let delivered: ((m: unknown) => void) | null = null;
function nextMessage(): Promise<unknown> {
  const m = inbox.shift();
  if (m !== undefined) return Promise.resolve(m);
  return new Promise((resolve) => (delivered = resolve));
}

const CHECK_PATH = '/envoy.service.auth.v3.Authorization/Check';

/**
 * Which member of CheckResponse's http_response oneof an encoded response
 * carries: denied_response (field 2) or ok_response (field 3); null if neither.
 * Walks the top-level fields only (all are length-delimited messages).
 */
function checkResult(b: Buffer): 'ok' | 'denied' | null {
  const varint = (at: number): [number, number] => {
    let v = 0;
    let shift = 0;
    for (let i = at; i < b.length; i++) {
      v += (b[i]! & 0x7f) * 2 ** shift;
      if ((b[i]! & 0x80) === 0) return [v, i + 1];
      shift += 7;
    }
    return [NaN, b.length];
  };
  let result: 'ok' | 'denied' | null = null;
  for (let at = 0; at < b.length;) {
    const [tag, next] = varint(at);
    if ((tag & 7) !== 2) return null;
    const [len, body] = varint(next);
    if (tag >>> 3 === 2) result = 'denied';
    if (tag >>> 3 === 3) result = 'ok';
    at = body + len;
  }
  return result;
}

async function worker(): Promise<void> {
  process.on('message', (m) => {
    if (delivered) { const d = delivered; delivered = null; d(m); } else inbox.push(m);
  });
  process.send!({ type: 'listening' });
  const start = (await nextMessage()) as WorkerStart;
  const interval = 1000 / start.rate;
  const r = prng(0x5eed);
  let bucket = newBucket(0);
  let inflight = 0;
  let distinctN = 0;

  function newBucket(index: number): BucketReport & { h: Hist } {
    return { index, sent: 0, answered: 0, ok: 0, rejected: {}, errors: 0, errorKinds: {}, hist: [], lagMaxMs: 0, lateSends: 0, h: new Hist() };
  }
  // Errors are counted by kind (no per-request detail in the key, so kinds stay few); one example of each is kept.
  const examples = new Map<string, string>();
  const error = (kind: string, example = ''): void => {
    bucket.errors++;
    const k = kind.slice(0, 160);
    bucket.errorKinds[k] = (bucket.errorKinds[k] ?? 0) + 1;
    if (!examples.has(k) && examples.size < 50) {
      examples.set(k, example);
      if (example) process.send!({ type: 'example', kind: k, example: example.slice(0, 300) });
    }
  };

  // Exactly missShare of the requests are distinct, evenly spread (a steady trickle).
  let owed = 0;
  const isDistinct = (): boolean => {
    owed += start.missShare;
    if (owed >= 1) { owed -= 1; return true; }
    return false;
  };

  let send: (scheduled: number) => void;
  let close: () => void = () => {};
  if (start.kind === 'grpc') {
    // Requests are encoded with the server's own proto definitions; the hot
    // set once, up front, so the generator spends its CPU on sending, not encoding.
    const encode = authorizationService().Check!.requestSerialize;
    const checkRequest = (q: GrpcReq): Buffer => encode({
      attributes: {
        source: { principal: q.principal },
        destination: { principal: 'spiffe://cluster.local/ns/ml/sa/model' },
        request: { http: { method: q.method, path: q.path, host: HOST, headers: { ':path': q.path, ':method': q.method, ':authority': HOST }, protocol: 'HTTP/2' } },
      },
    });
    const hot = grpcHotSet().map((q) => ({ q, bytes: checkRequest(q) }));
    const client = new grpc.Client(`127.0.0.1:${start.port}`, grpc.credentials.createInsecure());
    await new Promise<void>((resolve, reject) => client.waitForReady(Date.now() + 10_000, (err) => (err ? reject(err) : resolve())));
    close = () => client.close();
    const identity = (b: Buffer): Buffer => b;
    send = (scheduled) => {
      let q: GrpcReq;
      let bytes: Buffer;
      if (isDistinct()) {
        q = grpcDistinct(distinctN++);
        bytes = checkRequest(q);
      } else ({ q, bytes } = hot[Math.floor(r() * hot.length)]!);
      inflight++;
      client.makeUnaryRequest(CHECK_PATH, identity, identity, bytes, { deadline: scheduled + start.timeoutMs }, (err, res) => {
        inflight--;
        if (err || !res) {
          const code = err ? (grpc.status[err.code] ?? String(err.code)) : 'no response';
          // A deadline's details carry timings; other statuses are grouped by their message.
          return error(err?.code === grpc.status.DEADLINE_EXCEEDED ? `gRPC ${code} (client deadline)` : `gRPC ${code}: ${err?.details ?? ''}`, err?.details);
        }
        const result = checkResult(res);
        const allowed = result === 'ok';
        if (allowed !== q.allow || result === null) return error(`wrong decision: ${result ?? 'neither ok nor denied'} where ${q.allow ? 'allow' : 'deny'} was expected`, `${q.method} ${q.path} by ${q.principal}`);
        bucket.answered++;
        bucket.ok++;
        if (!allowed) bucket.rejected.deny = (bucket.rejected.deny ?? 0) + 1;
        bucket.h.add(now() - scheduled);
      });
    };
  } else {
    const pki = start.pki!;
    const ca = readFileSync(pki.ca);
    // One keep-alive pool per identity: each presents its own client certificate.
    const agents = new Map<string, Agent>();
    for (const [who, c] of Object.entries(pki.clients)) {
      agents.set(who, new Agent({ keepAlive: true, maxSockets: 64, ca, cert: readFileSync(c.cert), key: readFileSync(c.key), servername: 'localhost' }));
    }
    close = () => { for (const a of agents.values()) a.destroy(); };
    send = (scheduled) => {
      const q = httpsPick(r, isDistinct(), distinctN);
      if (q.distinct) distinctN++;
      inflight++;
      let settled = false;
      const done = (status: number | null, err?: string): void => {
        if (settled) return;
        settled = true;
        inflight--;
        if (status === null) return error(err ?? 'no answer');
        if (!q.expect.includes(status)) return error(`HTTP ${status} for ${q.who}${q.distinct ? ' (new path)' : ''}`, `${q.path}: ${JSON.stringify(err ?? '')}`);
        bucket.answered++;
        if (status === q.ok) {
          bucket.ok++;
          bucket.h.add(now() - scheduled);
        } else bucket.rejected[String(status)] = (bucket.rejected[String(status)] ?? 0) + 1;
      };
      const req = httpsRequest({
        host: '127.0.0.1', port: start.port, method: 'POST', path: q.path, agent: agents.get(q.who)!,
        headers: { host: HOST, 'content-type': 'application/json', 'content-length': Buffer.byteLength(BODY) },
      }, (res) => {
        let body = '';
        res.on('data', (d: Buffer) => { if (body.length < 200) body += d.toString(); });
        res.on('error', (e) => done(null, `response: ${e.message}`));
        res.on('end', () => done(res.statusCode ?? 0, body.slice(0, 200)));
      });
      const timer = setTimeout(() => { req.destroy(new Error(`no answer within ${start.timeoutMs} ms`)); }, Math.max(1, scheduled + start.timeoutMs - now()));
      req.on('close', () => clearTimeout(timer));
      req.on('error', (e) => done(null, (e as NodeJS.ErrnoException).code ?? e.message));
      req.end(BODY);
    };
  }
  process.send!({ type: 'ready' });
  start.t0 = ((await nextMessage()) as { t0: number }).t0;
  const end = start.t0 + start.durationMs;

  // Buckets close on the clock (an answer counts in the bucket in which it arrives).
  const closeBucket = (): void => {
    const { h, ...b } = bucket;
    process.send!({ type: 'bucket', bucket: { ...b, hist: h.toJSON() } });
    bucket = newBucket(b.index + 1);
  };
  const buckets = Math.ceil(start.durationMs / start.bucketMs);
  const bucketTimer = (k: number): void => {
    if (k >= buckets) return; // the last one closes after the drain
    setTimeout(() => { closeBucket(); bucketTimer(k + 1); }, Math.max(0, start.t0 + k * start.bucketMs - now()));
  };
  bucketTimer(1);

  let i = 0;
  await new Promise<void>((resolve) => {
    const pump = (): void => {
      const t = now();
      for (let next = start.t0 + i * interval; next <= t && next < end; next = start.t0 + ++i * interval) {
        const lag = t - next;
        if (lag > bucket.lagMaxMs) bucket.lagMaxMs = lag;
        if (lag > 5) bucket.lateSends++;
        bucket.sent++;
        send(next);
      }
      const next = start.t0 + i * interval;
      if (next >= end) return resolve();
      setTimeout(pump, Math.max(0, next - now() - 0.5));
    };
    setTimeout(pump, Math.max(0, start.t0 - now()));
  });
  // Drain: answers still in flight count in the last bucket (they time out on their own).
  const drainUntil = end + start.timeoutMs + 1000;
  while (inflight > 0 && now() < drainUntil) await new Promise((res) => setTimeout(res, 20));
  if (inflight > 0) bucket.errorKinds[`${inflight} requests unanswered at exit`] = inflight;
  bucket.errors += inflight;
  closeBucket();
  close();
  process.send!({ type: 'done' }, () => process.exit(0));
}

// ---------------------------------------------------------------- /proc and /metrics

function rssBytes(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS in /proc/${pid}/status`);
  return Number(m[1]) * 1024;
}

/** utime + stime of a process and all its threads, in clock ticks (USER_HZ, 100). */
function cpuTicks(pid: number): number {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return Number(f[11]) + Number(f[12]);
  } catch {
    return NaN;
  }
}

/** Busy ticks of all CPUs together (everything but idle and iowait). */
function busyTicks(): number {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  return (f[0] ?? 0) + (f[1] ?? 0) + (f[2] ?? 0) + (f[5] ?? 0) + (f[6] ?? 0) + (f[7] ?? 0);
}

/** The pid of our own child process whose command (comm) is `comm` and whose command line contains `arg`. */
function childPid(comm: string | null, arg: string): number {
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const s = readFileSync(`/proc/${d}/stat`, 'utf8');
      const name = s.slice(s.indexOf('(') + 1, s.lastIndexOf(')'));
      const ppid = Number(s.slice(s.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === process.pid && (comm === null || name === comm) && readFileSync(`/proc/${d}/cmdline`, 'utf8').includes(arg)) return Number(d);
    } catch { /* gone meanwhile */ }
  }
  throw new Error(`no child process ${comm} with ${arg} found`);
}

async function metricsText(port: number): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`);
  if (res.status !== 200) throw new Error(`/metrics answered ${res.status}`);
  return res.text();
}

function gauge(text: string, name: string): number {
  const m = new RegExp(`^${name} ([0-9.e+-]+)$`, 'm').exec(text);
  return m ? Number(m[1]) : NaN;
}

/** Cumulative infergate_check_duration_seconds buckets: [upper bound in s, count]. */
function durationBuckets(text: string): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (const m of text.matchAll(/^infergate_check_duration_seconds_bucket\{le="([^"]+)"\} ([0-9.e+]+)$/gm)) {
    out.push([m[1] === '+Inf' ? Infinity : Number(m[1]), Number(m[2])]);
  }
  return out;
}

/** histogram_quantile as Prometheus does it: linear within the bucket the rank falls in. Seconds. */
function histogramQuantile(q: number, before: Array<[number, number]>, after: Array<[number, number]>): number {
  const cum = after.map(([le, c], i) => [le, c - (before[i]?.[1] ?? 0)] as [number, number]);
  const total = cum[cum.length - 1]?.[1] ?? 0;
  if (total <= 0) return NaN;
  const rank = q * total;
  let lower = 0;
  let below = 0;
  for (const [le, c] of cum) {
    if (c >= rank) {
      if (le === Infinity) return lower; // beyond the last finite bucket: report its bound
      return lower + ((le - lower) * (rank - below)) / Math.max(1, c - below);
    }
    lower = le;
    below = c;
  }
  return NaN;
}

// ---------------------------------------------------------------- a phase

interface Watched { name: string; pid: number }

interface Sample {
  t: number;
  /** VmRSS by process name, bytes. */
  rss: Record<string, number>;
  /** Other figures by name (server heap, cache entries, Envoy allocator). */
  extra: Record<string, number>;
}

interface BucketRow {
  index: number;
  startS: number;
  endS: number;
  client: BucketReport;
  /** Server's own view: p50/p99 in ms from infergate_check_duration_seconds over this bucket. */
  serverP50: number;
  serverP99: number;
  serverChecks: number;
  /** % of one CPU per process, and everything else on the machine. */
  cpu: Record<string, number>;
}

interface MemorySeries {
  /** Process name (a key of Sample.rss). */
  name: string;
  label: string;
  /** Seconds from the phase start at which the verdict window opens. */
  windowStart: number;
  why: string;
}

interface PhaseSpec {
  name: 'server' | 'envoy';
  title: string;
  watched: Watched[];
  memory: MemorySeries[];
  serverMetricsPort: number;
  extraSample: () => Promise<Record<string, number>>;
  worker: Omit<WorkerStart, 't0' | 'durationMs' | 'bucketMs' | 'timeoutMs' | 'missShare'>;
  alive: () => string | null;
  /** The server's full GCs (appended to while the phase runs). */
  fullGcs: FullGc[];
}

interface MemoryVerdict {
  series: MemorySeries;
  samples: number;
  firstMiB: number;
  lastMiB: number;
  growthMiB: number;
  slopeMiBPerMin: number;
  /** slope x window length. */
  riseMiB: number;
  tau: number;
  minMiB: number;
  maxMiB: number;
  trend: boolean;
  flat: boolean | null;
}

interface LatencyVerdict {
  early: number[];
  late: number[];
  earlyP99: number;
  lateP99: number;
  earlyP50: number;
  lateP50: number;
  ratio: number;
  steady: boolean | null;
}

interface PhaseResult {
  spec: { name: string; title: string; rate: number };
  startedAt: string;
  samples: Sample[];
  buckets: BucketRow[];
  cpuTotal: Record<string, number>;
  memory: MemoryVerdict[];
  latency: LatencyVerdict;
  errors: number;
  errorKinds: Record<string, number>;
  errorExamples: Record<string, string>;
  decisionLogBytes: number | null;
  loadAverage: { start: string; end: string };
  /** Totals read at the end of the phase: the server's cache counters, Envoy's ext_authz and upstream counters. */
  counters: Record<string, number>;
  /** The server's full GCs during the phase: t in s from the phase start, heap after GC and committed, MiB. */
  fullGcs: Array<{ t: number; after: number; committed: number }>;
  /** Least-squares slope of the heap after full GC over the server's memory window, MiB/min (NaN below 3 GCs). */
  liveHeapSlope: number;
  notes: string[];
}

const sleepUntil = (t: number): Promise<void> => new Promise((r) => setTimeout(r, Math.max(0, t - now())));
const loadavg = (): string => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');

async function runPhase(o: Opts, spec: PhaseSpec, rate: number, decisionLog: string | null): Promise<PhaseResult> {
  const durationMs = o.minutes * 60_000;
  const bucketMs = Math.min(o.bucketSeconds * 1000, durationMs);
  const child: ChildProcess = fork(SELF, ['--worker'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  let listening!: () => void;
  const isListening = new Promise<void>((resolve) => (listening = resolve));
  const reports: BucketReport[] = [];
  let workerDone!: () => void;
  let workerFailed!: (e: Error) => void;
  const finished = new Promise<void>((resolve, reject) => { workerDone = resolve; workerFailed = reject; });
  let ready!: () => void;
  const isReady = new Promise<void>((resolve) => (ready = resolve));
  const examples: Record<string, string> = {};
  child.on('message', (m: { type: string; bucket?: BucketReport; kind?: string; example?: string }) => {
    if (m.type === 'example') examples[m.kind!] ??= m.example!;
    else if (m.type === 'listening') listening();
    else if (m.type === 'ready') ready();
    else if (m.type === 'bucket') reports.push(m.bucket!);
    else if (m.type === 'done') workerDone();
  });
  child.on('exit', (code) => { if (code !== 0) workerFailed(new Error(`load generator exited with code ${code}`)); });
  const watched: Watched[] = [...spec.watched, { name: 'load generator', pid: child.pid! }, { name: 'bench (sampler, upstream)', pid: process.pid }];
  await Promise.race([isListening, finished]);
  child.send({ ...spec.worker, t0: 0, durationMs, bucketMs, timeoutMs: o.timeoutMs, missShare: o.missShare } satisfies WorkerStart);
  await Promise.race([isReady, finished]);
  const t0 = now() + 300;
  child.send({ t0 });
  const startedAt = new Date(t0).toISOString();
  const loadStart = loadavg();

  const samples: Sample[] = [];
  const sample = async (t: number): Promise<void> => {
    const dead = spec.alive();
    if (dead) throw new Error(dead);
    const rss: Record<string, number> = {};
    for (const m of spec.memory) rss[m.name] = rssBytes(spec.watched.find((w) => w.name === m.name)!.pid);
    samples.push({ t, rss, extra: await spec.extraSample() });
  };
  interface Mark { busy: number; procs: number[]; at: number; hist: Array<[number, number]> }
  const mark = async (): Promise<Mark> => ({
    busy: busyTicks(), procs: watched.map((w) => cpuTicks(w.pid)), at: now(),
    hist: durationBuckets(await metricsText(spec.serverMetricsPort)),
  });
  const cpuBetween = (a: Mark, b: Mark): Record<string, number> => {
    const secs = (b.at - a.at) / 1000;
    const pc = (ticks: number): number => (ticks / 100 / secs) * 100;
    const out: Record<string, number> = {};
    let ours = 0;
    watched.forEach((w, i) => {
      const d = (b.procs[i] ?? NaN) - (a.procs[i] ?? NaN);
      out[w.name] = pc(d);
      if (Number.isFinite(d)) ours += d;
    });
    out.others = Math.max(0, pc(b.busy - a.busy - ours));
    return out;
  };

  const buckets: BucketRow[] = [];
  const marks: Mark[] = [];
  await sleepUntil(t0);
  marks.push(await mark());
  await sample(0);
  const sampleTimes: number[] = [];
  for (let t = o.sampleSeconds; t < durationMs / 1000 - 1e-6; t += o.sampleSeconds) sampleTimes.push(t);
  const bucketEnds: number[] = [];
  for (let t = bucketMs / 1000; t < durationMs / 1000 - 1e-6; t += bucketMs / 1000) bucketEnds.push(t);
  const events = [...new Set([...sampleTimes, ...bucketEnds].map((t) => Math.round(t * 1000) / 1000))].sort((a, b) => a - b);
  const progress = (t: number): void => {
    const s = samples[samples.length - 1];
    const mem = s ? Object.entries(s.rss).map(([k, v]) => `${k} ${(v / MIB).toFixed(1)} MiB`).join(', ') : '';
    process.stdout.write(`  ${spec.name} t=${t.toFixed(0)}s ${mem}\n`);
  };
  for (const t of events) {
    await Promise.race([sleepUntil(t0 + t * 1000), finished]);
    if (bucketEnds.includes(t)) marks.push(await mark());
    if (sampleTimes.includes(t)) await sample(t);
    if (bucketEnds.includes(t) || (t % 60 === 0 && t > 0)) progress(t);
  }
  await sleepUntil(t0 + durationMs);
  await sample(durationMs / 1000);
  await finished;
  marks.push(await mark());
  progress(durationMs / 1000);
  const dead = spec.alive();
  if (dead) throw new Error(dead);

  reports.sort((a, b) => a.index - b.index);
  for (const rep of reports) {
    const a = marks[rep.index];
    const b = marks[rep.index + 1];
    if (!a || !b) continue;
    buckets.push({
      index: rep.index,
      startS: (rep.index * bucketMs) / 1000,
      endS: Math.min(((rep.index + 1) * bucketMs) / 1000, durationMs / 1000),
      client: rep,
      serverP50: histogramQuantile(0.5, a.hist, b.hist) * 1000,
      serverP99: histogramQuantile(0.99, a.hist, b.hist) * 1000,
      serverChecks: (b.hist[b.hist.length - 1]?.[1] ?? 0) - (a.hist[a.hist.length - 1]?.[1] ?? 0),
      cpu: cpuBetween(a, b),
    });
  }
  const errors = reports.reduce((n, r) => n + r.errors, 0);
  const errorKinds: Record<string, number> = {};
  for (const r of reports) for (const [k, n] of Object.entries(r.errorKinds)) errorKinds[k] = (errorKinds[k] ?? 0) + n;
  return {
    spec: { name: spec.name, title: spec.title, rate },
    startedAt,
    samples,
    buckets,
    cpuTotal: cpuBetween(marks[0]!, marks[marks.length - 1]!),
    memory: spec.memory.map((m) => memoryVerdict(o, m, samples)),
    latency: latencyVerdict(o, buckets, bucketMs / 1000),
    errors,
    errorKinds,
    errorExamples: examples,
    decisionLogBytes: decisionLog !== null && existsSync(decisionLog) ? statSync(decisionLog).size : null,
    loadAverage: { start: loadStart, end: loadavg() },
    counters: {},
    ...liveHeap(spec, t0, durationMs),
    notes: [],
  };
}

// ---------------------------------------------------------------- verdicts

function liveHeap(spec: PhaseSpec, t0: number, durationMs: number): Pick<PhaseResult, 'fullGcs' | 'liveHeapSlope'> {
  const fullGcs = spec.fullGcs.filter((g) => g.at >= t0 && g.at <= t0 + durationMs + 1000)
    .map((g) => ({ t: (g.at - t0) / 1000, after: g.after, committed: g.committed })); // V8 prints MiB
  const start = spec.memory.find((m) => m.name === 'server')?.windowStart ?? 0;
  const w = fullGcs.filter((g) => g.t >= start);
  return { fullGcs, liveHeapSlope: w.length >= 3 ? slope(w.map((g) => g.t / 60), w.map((g) => g.after)) : NaN };
}

function median(xs: number[]): number {
  const v = [...xs].sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  const m = Math.floor(v.length / 2);
  return v.length % 2 ? v[m]! : (v[m - 1]! + v[m]!) / 2;
}

/** Least-squares slope of y on x. */
function slope(xs: number[], ys: number[]): number {
  const n = xs.length;
  if (n < 2) return NaN;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let sxy = 0;
  let sxx = 0;
  for (let i = 0; i < n; i++) {
    sxy += (xs[i]! - mx) * (ys[i]! - my);
    sxx += (xs[i]! - mx) ** 2;
  }
  return sxx === 0 ? NaN : sxy / sxx;
}

/** Kendall's tau-b of y against x (x has no ties here: sample times). */
function kendallTau(xs: number[], ys: number[]): number {
  let concordant = 0;
  let discordant = 0;
  let tiesY = 0;
  const n = xs.length;
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      const s = Math.sign(xs[j]! - xs[i]!) * Math.sign(ys[j]! - ys[i]!);
      if (s > 0) concordant++;
      else if (s < 0) discordant++;
      else tiesY++;
    }
  }
  const pairs = (n * (n - 1)) / 2;
  const denom = Math.sqrt(pairs * (pairs - tiesY));
  return denom === 0 ? 0 : (concordant - discordant) / denom;
}

function memoryVerdict(o: Opts, series: MemorySeries, samples: Sample[]): MemoryVerdict {
  const w = samples.filter((s) => s.t >= series.windowStart - 1e-6);
  const ts = w.map((s) => s.t / 60);
  const mib = w.map((s) => s.rss[series.name]! / MIB);
  const k = Math.min(3, Math.floor(mib.length / 2));
  const first = k > 0 ? median(mib.slice(0, k)) : NaN;
  const last = k > 0 ? median(mib.slice(-k)) : NaN;
  const sl = slope(ts, mib);
  const tau = mib.length >= 3 ? kendallTau(ts, mib) : NaN;
  const span = ts.length ? ts[ts.length - 1]! - ts[0]! : 0;
  const trend = Number.isFinite(tau) && tau >= TREND_TAU && sl * span >= TREND_RISE;
  const growth = last - first;
  return {
    series, samples: mib.length, firstMiB: first, lastMiB: last, growthMiB: growth, slopeMiBPerMin: sl, riseMiB: sl * span, tau,
    minMiB: Math.min(...mib), maxMiB: Math.max(...mib), trend,
    flat: mib.length < 3 ? null : growth <= o.maxGrowthMiB && !trend,
  };
}

function latencyVerdict(o: Opts, buckets: BucketRow[], bucketS: number): LatencyVerdict {
  const after = buckets.filter((b) => b.index * bucketS >= o.warmupSeconds - 1e-6);
  const k = Math.max(1, Math.floor(after.length / 3));
  const early = after.slice(0, k);
  const late = after.slice(-k);
  const pool = (bs: BucketRow[]): Hist => bs.reduce((h, b) => h.merge(Hist.from(b.client.hist)), new Hist());
  const e = pool(early);
  const l = pool(late);
  const ratio = l.quantile(0.99) / e.quantile(0.99);
  return {
    early: early.map((b) => b.index + 1), late: late.map((b) => b.index + 1),
    earlyP99: e.quantile(0.99), lateP99: l.quantile(0.99), earlyP50: e.quantile(0.5), lateP50: l.quantile(0.5), ratio,
    steady: after.length < 2 ? null : ratio <= o.p99Factor,
  };
}

// ---------------------------------------------------------------- the two phases

async function stopAll(stops: Array<() => Promise<unknown>>): Promise<void> {
  for (const s of stops.reverse()) await s().catch(() => undefined);
}

function serverArgs(manifest: string, decisionLog: string | null): string[] {
  // Defaults otherwise (cache, TTL, manifest watching), as an operator would run it.
  return ['--manifest', manifest, '--decision-log', decisionLog ?? 'off', '--log-level', 'info'];
}

/** A full (mark-compact) GC as node --trace-gc reports it: when, and the heap before and after, MB. */
interface FullGc { at: number; before: number; after: number; committed: number }

interface AuthzServer {
  readonly pid: number;
  readonly port: number;
  readonly metricsPort: number;
  readonly fullGcs: FullGc[];
  alive(): string | null;
  stop(): Promise<void>;
}

/**
 * Runs the built CLI (dist/ext-authz/src/cli.js) as its own process, as
 * demo/authz-process.ts does, on port 0, with node's --trace-gc: after each
 * full GC it prints the heap that survived, the one figure that tells retained
 * memory (a leak) from V8 merely keeping a big heap. Only those lines and a
 * short tail of the output are kept, so a long soak holds no growing log here.
 */
async function startServer(args: string[]): Promise<AuthzServer> {
  const cli = requireFile(join(ROOT, 'dist/ext-authz/src/cli.js'), 'run `bash scripts/build.sh` (or bench/soak.sh, which builds first)');
  const child = spawn(process.execPath, ['--trace-gc', cli, '--listen', '127.0.0.1:0', '--metrics', '127.0.0.1:0', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const fullGcs: FullGc[] = [];
  let tail = '';
  let ports: { grpc: number; metrics: number } | null = null;
  const lines = (stream: NodeJS.ReadableStream): void => {
    let partial = '';
    stream.on('data', (d: Buffer) => {
      const parts = (partial + d.toString()).split('\n');
      partial = parts.pop() ?? '';
      for (const l of parts) {
        const gc = /Mark-Compact(?: \([a-z ]+\))? ([\d.]+) \(([\d.]+)\) -> ([\d.]+) \(([\d.]+)\) MB/.exec(l);
        if (gc) {
          fullGcs.push({ at: now(), before: Number(gc[1]), after: Number(gc[3]), committed: Number(gc[4]) });
          continue;
        }
        if (/\[\d+:0x[0-9a-f]+\]/.test(l)) continue; // other --trace-gc lines (scavenges)
        if (ports === null && l.includes('infergate-authz serving')) {
          const rec = JSON.parse(l) as { grpc: string; metrics: string };
          ports = { grpc: Number(rec.grpc.split(':').pop()), metrics: Number(rec.metrics.split(':').pop()) };
        }
        tail = (tail + l + '\n').slice(-4000);
      }
    });
  };
  lines(child.stdout);
  lines(child.stderr);
  let exited = false;
  const exit = new Promise<void>((resolve) => child.on('exit', () => ((exited = true), resolve())));
  const deadline = Date.now() + 15_000;
  while (ports === null && !exited && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
  if (ports === null) {
    child.kill('SIGKILL');
    throw new Error(`infergate-authz did not start:\n${tail}`);
  }
  const { grpc: port, metrics: metricsPort } = ports;
  return {
    pid: child.pid!, port, metricsPort, fullGcs,
    alive: () => (exited ? `infergate-authz (pid ${child.pid}) died:\n${tail}` : null),
    stop: async () => {
      if (exited) return;
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 3000);
      await exit;
      clearTimeout(t);
    },
  };
}

async function serverExtra(port: number): Promise<Record<string, number>> {
  const text = await metricsText(port);
  return {
    heapUsed: gauge(text, 'infergate_nodejs_heap_size_used_bytes'),
    heapTotal: gauge(text, 'infergate_nodejs_heap_size_total_bytes'),
    external: gauge(text, 'infergate_nodejs_external_memory_bytes'),
    cacheEntries: gauge(text, 'infergate_decision_cache_entries'),
  };
}

async function serverCounters(port: number): Promise<Record<string, number>> {
  const text = await metricsText(port);
  return {
    'server cache hits': gauge(text, 'infergate_decision_cache_hits_total'),
    'server cache misses': gauge(text, 'infergate_decision_cache_misses_total'),
  };
}

/** Envoy's counters that explain failures: ext_authz outcomes, the authz cluster's timeouts and connection teardowns, response classes. */
async function envoyCounters(adminPort: number): Promise<Record<string, number>> {
  const text = await (await fetch(`http://127.0.0.1:${adminPort}/stats`)).text();
  const out: Record<string, number> = {};
  const keep = /^(http\.ingress\.ext_authz\.(ok|denied|error|failure_mode_allowed)|cluster\.infergate_ext_authz\.(upstream_rq_timeout|upstream_cx_total|upstream_cx_destroy_remote_with_active_rq|upstream_cx_close_notify|upstream_rq_pending_overflow|upstream_rq_total)|http\.ingress\.downstream_rq_[2-5]xx): (\d+)$/;
  for (const line of text.split('\n')) {
    const m = keep.exec(line);
    if (m) out[`envoy ${m[1]!.replace(/^(http\.ingress|cluster\.infergate_ext_authz)\./, (p) => (p.startsWith('cluster') ? 'authz_cluster.' : ''))}`] = Number(m[m.length - 1]);
  }
  return out;
}

function cacheWindow(o: Opts, rate: number, distinctShare: number): { start: number; fill: number; why: string } {
  const perSecond = rate * distinctShare;
  const fill = perSecond > 0 ? CACHE_SIZE / perSecond : Infinity;
  const start = Math.max(o.warmupSeconds, Number.isFinite(fill) ? Math.ceil(fill) : 0);
  const why = Number.isFinite(fill)
    ? `from t=${start}s: after the warm-up (${o.warmupSeconds} s)${fill > o.warmupSeconds ? ` and after the decision cache is full (${CACHE_SIZE} entries at ${perSecond.toFixed(0)} new/s: ${fill.toFixed(0)} s; its growth to that bound is by design)` : ` (the decision cache, ${CACHE_SIZE} entries at ${perSecond.toFixed(0)} new/s, is full by ${fill.toFixed(0)} s)`}`
    : `from t=${start}s (the warm-up); no distinct requests, so the cache holds the hot set only`;
  return { start, fill, why };
}

async function serverPhase(o: Opts, tmp: string): Promise<PhaseResult> {
  const decisionLog = o.decisionLog === 'file' ? join(tmp, 'decisions-server-phase.log') : null;
  const stops: Array<() => Promise<unknown>> = [];
  try {
    const authz = await startServer(serverArgs(EXAMPLE_MANIFEST, decisionLog));
    stops.push(() => authz.stop());
    const pid = authz.pid;
    const w = cacheWindow(o, o.rate, o.missShare);
    const result = await runPhase(o, {
      name: 'server',
      title: 'infergate-authz alone, gRPC Check',
      watched: [{ name: 'server', pid }],
      memory: [{ name: 'server', label: 'infergate-authz RSS', windowStart: w.start, why: w.why }],
      serverMetricsPort: authz.metricsPort,
      extraSample: () => serverExtra(authz.metricsPort),
      worker: { kind: 'grpc', port: authz.port, rate: o.rate },
      alive: () => authz.alive(),
      fullGcs: authz.fullGcs,
    }, o.rate, decisionLog);
    result.counters = await serverCounters(authz.metricsPort);
    if (w.start >= o.minutes * 60) result.notes.push(`the memory window starts at ${w.start} s, at or after the end of the phase: raise --minutes or --miss-share`);
    return result;
  } finally {
    await stopAll(stops);
  }
}

async function startEcho(): Promise<{ port: number; server: Server }> {
  // Answers every request with a small JSON body naming the caller ext_authz verified; keeps nothing.
  const server = createHttpServer((req, res) => {
    req.resume();
    req.on('end', () => {
      const body = JSON.stringify({ ok: true, caller: req.headers['x-infergate-caller'] ?? null });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    });
  });
  // Envoy keeps upstream connections open; a Node-side idle close would race with reuse (spurious 503s).
  server.keepAliveTimeout = 0;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return { port: (server.address() as AddressInfo).port, server };
}

/** The demo manifest's guard chain, with budgets for this soak: one greedy caller, everyone else far below theirs. */
function guardFilters(rate: number): object[] {
  const chain = demoFilterChain(DEMO_MANIFEST);
  for (const f of chain) {
    const cfg = f.config as { rateLimit?: Record<string, unknown> };
    if (cfg.rateLimit) {
      cfg.rateLimit = {
        ...cfg.rateLimit,
        default: defaultLimit(rate),
        callers: [{ match: HTTPS_CALLERS.find((c) => c.who === 'greedy')!.id, ...greedyLimit(rate) }],
      };
    }
  }
  const moduleDir = join(ROOT, 'build/filters');
  for (const f of chain) requireFile(join(moduleDir, `${f.id}.wasm`), 'run filters/build.sh (or `bash scripts/build.sh`) to build the filters');
  return localWasmFilters(chain, moduleDir);
}

async function envoyPhase(o: Opts, tmp: string): Promise<PhaseResult> {
  const decisionLog = o.decisionLog === 'file' ? join(tmp, 'decisions-envoy-phase.log') : null;
  const stops: Array<() => Promise<unknown>> = [];
  try {
    envoyBinary();
    const filters = guardFilters(o.envoyRate);
    const pki = makePki(join(tmp, 'pki'), Object.fromEntries(HTTPS_CALLERS.map((c) => [c.who, c.id])));
    const echo = await startEcho();
    stops.push(() => new Promise<void>((r) => { echo.server.closeAllConnections(); echo.server.close(() => r()); }));
    const authz = await startServer(serverArgs(DEMO_MANIFEST, decisionLog));
    stops.push(() => authz.stop());
    const authzPid = authz.pid;
    const envoy: EnvoyHandle = await startEnvoy(renderBootstrap({
      listenerPort: 0,
      tls: pki,
      extAuthz: { host: '127.0.0.1', port: authz.port },
      httpFilters: filters,
      upstream: { host: '127.0.0.1', port: echo.port },
    }), { concurrency: 2, logLevel: 'warn' });
    stops.push(() => envoy.stop());
    const envoyPid = childPid('envoy', '--disable-hot-restart');
    const logsBefore = envoy.logs().length;
    const distinctShare = o.missShare * (HTTPS_CALLERS.filter((c) => c.who !== 'greedy' && c.expect[0] === 200).reduce((a, c) => a + c.share, 0));
    const w = cacheWindow(o, o.envoyRate, distinctShare);
    const result = await runPhase(o, {
      name: 'envoy',
      title: 'Envoy (mTLS, ext_authz, guard) + infergate-authz, HTTPS',
      watched: [{ name: 'envoy', pid: envoyPid }, { name: 'server', pid: authzPid }],
      memory: [
        { name: 'envoy', label: 'Envoy RSS', windowStart: o.warmupSeconds, why: `from t=${o.warmupSeconds}s (after the warm-up)` },
        { name: 'server', label: 'infergate-authz RSS', windowStart: w.start, why: w.why },
      ],
      serverMetricsPort: authz.metricsPort,
      extraSample: async () => {
        const mem = (await (await fetch(`http://127.0.0.1:${envoy.adminPort}/memory`)).json()) as Record<string, string>;
        return { ...(await serverExtra(authz.metricsPort)), envoyAllocated: Number(mem.allocated), envoyHeap: Number(mem.heap_size) };
      },
      worker: {
        kind: 'https', port: envoy.listenerPort('ingress'), rate: o.envoyRate,
        pki: { ca: pki.caCert, clients: Object.fromEntries(HTTPS_CALLERS.map((c) => [c.who, pki.client(c.who)])) },
      },
      fullGcs: authz.fullGcs,
      alive: () => authz.alive() ?? (existsSync(`/proc/${envoyPid}`) ? null : `envoy (pid ${envoyPid}) died: ${envoy.logs().slice(-2000)}`),
    }, o.envoyRate, decisionLog);
    result.counters = { ...(await serverCounters(authz.metricsPort)), ...(await envoyCounters(envoy.adminPort)) };
    const warnings = envoy.logs().slice(logsBefore).split('\n').filter((l) => /\[(warning|error|critical)\]/.test(l));
    if (warnings.length) result.notes.push(`Envoy logged ${warnings.length} warning/error line(s); the first: ${warnings[0]!.slice(0, 300)}`);
    if (w.start >= o.minutes * 60) result.notes.push(`the server's memory window starts at ${w.start} s, at or after the end of the phase: raise --minutes or --miss-share`);
    return result;
  } finally {
    await stopAll(stops);
  }
}

// ---------------------------------------------------------------- report

const f1 = (n: number): string => (Number.isFinite(n) ? n.toFixed(1) : '-');
const f2 = (n: number): string => (Number.isFinite(n) ? n.toFixed(2) : '-');
const f3 = (n: number): string => (Number.isFinite(n) ? n.toFixed(3) : '-');
const f0 = (n: number): string => (Number.isFinite(n) ? Math.round(n).toString() : '-');
const mib = (b: number | undefined): string => f1((b ?? NaN) / MIB);
const clock = (s: number): string => `${Math.floor(s / 60)}:${String(Math.round(s % 60)).padStart(2, '0')}`;

function table(headers: string[], rows: string[][], markdown: boolean): string {
  if (markdown) {
    const line = (cells: string[]): string => `| ${cells.join(' | ')} |`;
    return [line(headers), line(headers.map((_, i) => (i === 0 ? '---' : '---:'))), ...rows.map(line)].join('\n');
  }
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(headers), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

/** The lowest V8 heap-used sample in (from, to]: the troughs of the GC sawtooth, where retained memory shows. */
function heapFloor(samples: Sample[], from: number, to: number): number {
  const v = samples.filter((s) => s.t > from + 0.5 && s.t <= to + 0.5).map((s) => s.extra.heapUsed ?? NaN).filter(Number.isFinite);
  return v.length ? Math.min(...v) : NaN;
}

/** The sample taken at (or just before) time t. */
function sampleAt(samples: Sample[], t: number): Sample | undefined {
  let best: Sample | undefined;
  for (const s of samples) if (s.t <= t + 0.5) best = s;
  return best;
}

function envoyVersion(): string {
  try {
    return /version: \S+?\/([0-9.]+)/.exec(execFileSync(envoyBinary(), ['--version'], { encoding: 'utf8' }))?.[1] ?? '?';
  } catch {
    return '?';
  }
}

function method(o: Opts, only: Opts['only']): string[] {
  const cpu = cpus();
  const lines = [
    `soak: ${o.minutes} min per phase, memory sampled every ${o.sampleSeconds} s (t=0 is when load starts), latency and throughput per ${o.bucketSeconds} s ("minute" rows), warm-up ${o.warmupSeconds} s`,
    `machine: ${cpu.length} CPUs (${cpu[0]?.model.trim() ?? 'unknown'}), node ${process.version}, load average at start ${loadavg()}`,
    'load: open loop; a load generator in its own process sends request i at t0 + i/rate, whatever is still in flight, and times it from that scheduled instant',
    `      (no coordinated omission); deadline ${o.timeoutMs} ms per request; "lag" = how late the generator itself sent (CPU starvation of the client, not the server)`,
  ];
  if (only !== 'envoy') {
    lines.push(
      `server phase: built infergate-authz CLI as its own process, test/fixtures/manifests/example.yaml, cache ${CACHE_SIZE} entries / TTL 30 s (defaults),`,
      `      decision log ${o.decisionLog === 'file' ? 'to a file (JSON line per check, not rotated)' : 'off'}; ${o.rate} Check/s over one gRPC channel (grpc-js), ` +
        `${((1 - o.missShare) * 100).toFixed(0)}% from a hot set of ${grpcHotSet().length} requests (8 identities x ${HOT_MODELS} models, allows and denies),`,
      `      ${(o.missShare * 100).toFixed(0)}% distinct (a new SPIFFE ID every time, half allowed, half denied): cache misses, new entries, LRU eviction once full`,
    );
  }
  if (only !== 'server') {
    const mix = HTTPS_CALLERS.map((c) => `${c.who} ${(c.share * 100).toFixed(0)}%`).join(', ');
    lines.push(
      `envoy phase: Envoy ${envoyVersion()} (--concurrency 2, mTLS listener requiring SPIFFE client certificates), ext_authz -> infergate-authz (demo/manifest.yaml),`,
      `      guard filter (build/filters/guard.wasm, demo manifest's payload limit; rate limit ${defaultLimit(o.envoyRate).perSecond}/s burst ${defaultLimit(o.envoyRate).burst} per caller, greedy ${greedyLimit(o.envoyRate).perSecond}/s burst ${greedyLimit(o.envoyRate).burst}),`,
      `      echo upstream (node:http, in this process); ${o.envoyRate} HTTPS/1.1 POST/s (${Buffer.byteLength(BODY)} B JSON) over keep-alive connections, one pool per identity: ${mix};`,
      `      greedy sends ${(o.envoyRate * 0.08).toFixed(0)}/s against its ${greedyLimit(o.envoyRate).perSecond}/s (429 expected), frontend has no rule (403 expected); ${(o.missShare * 100).toFixed(0)}% of the allowed callers' requests go to a new model path (ext_authz cache misses)`,
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

function phaseReport(o: Opts, r: PhaseResult, markdown: boolean): string {
  const out: string[] = [];
  const envoy = r.spec.name === 'envoy';
  out.push(`${markdown ? '### ' : '== '}${r.spec.name} phase: ${r.spec.title}, ${r.spec.rate}/s offered, from ${r.startedAt} (load average ${r.loadAverage.start} -> ${r.loadAverage.end})`);
  out.push('');
  out.push('Samples (memory in MiB):');
  const sHeaders = envoy ? ['t', 'Envoy RSS', 'Envoy allocated', 'server RSS', 'server heap used', 'cache entries']
    : ['t', 'server RSS', 'heap used', 'heap total', 'external', 'cache entries'];
  const sRows = r.samples.map((s) => envoy
    ? [clock(s.t), mib(s.rss.envoy), mib(s.extra.envoyAllocated), mib(s.rss.server), mib(s.extra.heapUsed), f0(s.extra.cacheEntries ?? NaN)]
    : [clock(s.t), mib(s.rss.server), mib(s.extra.heapUsed), mib(s.extra.heapTotal), mib(s.extra.external), f0(s.extra.cacheEntries ?? NaN)]);
  out.push(table(sHeaders, sRows, markdown));
  out.push('');
  out.push(`Per ${o.bucketSeconds === 60 ? 'minute' : `${o.bucketSeconds} s`} (RSS and heap at the end of the row, heap min = lowest heap-used sample in the row; ` +
    'latency in ms from the scheduled send, server p50/p99 from its own histogram; rates per second; lag max = the generator\'s own lateness, ms):');
  const bHeaders = envoy
    ? ['minute', 'Envoy RSS', 'server RSS', 'p50', 'p99', 'answered/s', '2xx/s', '429/s', '403/s', 'errors', 'lag max', 'CPU% envoy/server/gen/others']
    : ['minute', 'RSS MiB', 'heap MiB', 'heap min', 'p50', 'p99', 'server p50', 'server p99', 'answered/s', 'denies/s', 'errors', 'lag max', 'CPU% server/gen/others'];
  const bRows = r.buckets.map((b) => {
    const s = sampleAt(r.samples, b.endS);
    const secs = b.endS - b.startS;
    const h = Hist.from(b.client.hist);
    const per = (n: number | undefined): string => f0((n ?? 0) / secs);
    const label = `${b.index + 1} (${clock(b.startS)}-${clock(b.endS)})`;
    return envoy
      ? [label, mib(s?.rss.envoy), mib(s?.rss.server), f2(h.quantile(0.5)), f2(h.quantile(0.99)), per(b.client.answered), per(b.client.ok),
          per(b.client.rejected['429']), per(b.client.rejected['403']), String(b.client.errors), f1(b.client.lagMaxMs),
          `${f0(b.cpu.envoy!)}/${f0(b.cpu.server!)}/${f0(b.cpu['load generator']!)}/${f0(b.cpu.others!)}`]
      : [label, mib(s?.rss.server), mib(s?.extra.heapUsed), mib(heapFloor(r.samples, b.startS, b.endS)), f2(h.quantile(0.5)), f2(h.quantile(0.99)), f3(b.serverP50), f3(b.serverP99),
          per(b.client.answered), per(b.client.rejected.deny), String(b.client.errors), f1(b.client.lagMaxMs),
          `${f0(b.cpu.server!)}/${f0(b.cpu['load generator']!)}/${f0(b.cpu.others!)}`];
  });
  out.push(table(bHeaders, bRows, markdown));
  out.push('');
  out.push(`CPU over the phase, % of one CPU: ${Object.entries(r.cpuTotal).map(([k, v]) => `${k} ${f0(v)}`).join(', ')}`);
  if (r.decisionLogBytes !== null) out.push(`decision log: written to a file, not rotated; it grew to ${(r.decisionLogBytes / 1e6).toFixed(1)} MB (${(r.decisionLogBytes / 1e6 / o.minutes).toFixed(1)} MB/min)`);
  else out.push('decision log: off');
  const c = r.counters;
  const hits = c['server cache hits'] ?? NaN;
  const misses = c['server cache misses'] ?? NaN;
  if (Number.isFinite(hits + misses)) out.push(`server decision cache: ${f1((100 * hits) / (hits + misses))}% hits (${hits} hits, ${misses} misses, whole phase)`);
  const envoyC = Object.entries(c).filter(([k]) => k.startsWith('envoy '));
  if (envoyC.length) out.push(`Envoy counters at the end: ${envoyC.map(([k, v]) => `${k.slice(6)} ${v}`).join(', ')}`);
  out.push('');
  out.push('Verdicts:');
  const bullet = markdown ? '- ' : '  ';
  for (const m of r.memory) {
    const word = m.flat === null ? 'NOT ENOUGH SAMPLES' : m.flat ? 'memory flat: yes' : 'memory flat: NO';
    out.push(`${bullet}${m.series.label}: ${word} — window ${m.series.why}, ${m.samples} samples; ` +
      `growth ${f2(m.growthMiB)} MiB (${f1(m.firstMiB)} -> ${f1(m.lastMiB)}, limit ${o.maxGrowthMiB}), slope ${f3(m.slopeMiBPerMin)} MiB/min ` +
      `(fitted rise ${f2(m.riseMiB)} MiB), ` +
      `Kendall tau ${f2(m.tau)}, range ${f1(m.minMiB)}-${f1(m.maxMiB)} MiB${m.trend ? ' — monotone upward trend' : ''}`);
  }
  if (r.fullGcs.length) {
    const mw = r.memory.find((m) => m.series.name === 'server');
    out.push(`${bullet}infergate-authz V8 heap after each full GC (node --trace-gc; MiB, committed in brackets): ` +
      r.fullGcs.map((g) => `${clock(g.t)} ${f1(g.after)} (${f0(g.committed)})`).join(', ') +
      `; slope over its memory window${mw ? ` (from t=${mw.series.windowStart}s)` : ''} ${Number.isFinite(r.liveHeapSlope) ? `${f3(r.liveHeapSlope)} MiB/min` : 'needs 3 full GCs in the window'}` +
      ' — retained memory; RSS growth with this flat is V8 keeping a bigger heap, not a leak');
  }
  const l = r.latency;
  const which = (xs: number[]): string => (xs.length === 1 ? `minute ${xs[0]}` : `minutes ${xs[0]}-${xs[xs.length - 1]}`);
  out.push(`${bullet}latency steady: ${l.steady === null ? 'NOT ENOUGH MINUTES after the warm-up' : l.steady ? 'yes' : 'NO'} — p99 ${f2(l.lateP99)} ms in ${which(l.late)} vs ` +
    `${f2(l.earlyP99)} ms in ${which(l.early)} (x${f2(l.ratio)}, limit x${o.p99Factor}); p50 ${f2(l.lateP50)} vs ${f2(l.earlyP50)} ms`);
  out.push(`${bullet}errors: ${r.errors === 0 ? 'none (every answer was the expected one)' : `${r.errors} unexpected answer(s) or failure(s)`}`);
  const kinds = Object.entries(r.errorKinds).sort((a, b) => b[1] - a[1]);
  for (const [k, n] of kinds.slice(0, 12)) out.push(`${bullet}  ${n} x ${k}${r.errorExamples[k] ? ` (e.g. ${r.errorExamples[k]})` : ''}`);
  if (kinds.length > 12) out.push(`${bullet}  ... and ${kinds.length - 12} more kinds (see --json)`);
  for (const n of r.notes) out.push(`${bullet}note: ${n}`);
  return out.join('\n');
}

function definitions(o: Opts): string[] {
  return [
    'Definitions:',
    `  memory flat: over the window (samples from its start to the end of the phase), growth = median of the last 3 samples - median of the first 3 <= ${o.maxGrowthMiB} MiB,`,
    `    and no monotone trend, where a trend is Kendall's tau-b of RSS against time >= ${TREND_TAU} together with a least-squares slope`,
    `    that adds up to >= ${TREND_RISE} MiB over the window (a leak has both; an allocator settling in steps, or a few pages, has not).`,
    '    Fewer than 3 samples in the window: no verdict.',
    `  latency steady: after the warm-up, the client p99 pooled over the last third of the minutes (at least one) <= ${o.p99Factor} x the p99 pooled over the first third.`,
  ];
}

function fullReport(o: Opts, results: PhaseResult[], markdown: boolean, header: string[]): string {
  const parts: string[] = [];
  const block = (lines: string[]): string => (markdown ? ['```', ...lines, '```'] : lines).join('\n');
  if (header.length) parts.push(block(header));
  for (const r of results) parts.push('', phaseReport(o, r, markdown));
  parts.push('', block(definitions(o)));
  return parts.join('\n');
}

// ---------------------------------------------------------------- main

async function main(): Promise<void> {
  const o = parseOpts(process.argv.slice(2));
  requireFile(join(ROOT, 'dist/ext-authz/src/cli.js'), 'run `bash scripts/build.sh` (or bench/soak.sh, which builds first)');
  requireFile(join(ROOT, 'build/policy/bundle.tar.gz'), 'run `bash scripts/build.sh` to compile the Rego policy');
  if (o.only !== 'server') envoyBinary();
  const header = method(o, o.only);
  console.log(header.join('\n'));
  const tmp = mkdtempSync(join(tmpdir(), 'infergate-soak-'));
  const results: PhaseResult[] = [];
  try {
    if (o.only !== 'envoy') results.push(await serverPhase(o, tmp));
    if (o.only !== 'server') results.push(await envoyPhase(o, tmp));
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  console.log(`load average at end ${loadavg()}`);
  console.log('\n' + fullReport(o, results, false, []).trimStart());
  if (o.markdown) writeFileSync(o.markdown, fullReport(o, results, true, header) + '\n');
  if (o.json) {
    writeFileSync(o.json, JSON.stringify({ options: o, method: header, definitions: definitions(o), results }, null, 2) + '\n');
  }
  if (results.some((r) => r.errors > 0)) {
    console.error(`soak: unexpected answers in: ${results.filter((r) => r.errors > 0).map((r) => r.spec.name).join(', ')}`);
    process.exitCode = 1;
  }
}

if (process.argv[2] === '--worker') {
  worker().catch((err: unknown) => {
    console.error(`soak load generator: ${err instanceof Error ? err.stack : String(err)}`);
    process.exit(1);
  });
} else {
  main().catch((err: unknown) => {
    console.error(`soak: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  });
}
