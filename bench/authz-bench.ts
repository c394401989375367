// ext-authz benchmark: drives envoy.service.auth.v3.Authorization/Check with
// ghz (a real, separate load generator) against infergate-authz in several
// configurations, against a bare grpc-js server that always allows
// (bench/allow-all-server.ts) and, given a binary, against OPA-Envoy
// (opa-envoy-plugin running bench/opa-envoy/policy.rego, the same manifest
// written in Rego), all in the same run, and prints throughput,
// p50/p99/p99.9 latency, server CPU per call and RSS, with ratios against
// the baseline and against OPA-Envoy.
//
//   node dist/bench/authz-bench.js [--ghz PATH] [--opa-envoy PATH] [--rounds 4]
//        [--duration 4] [--rate-duration 3] [--rate 1000] [--warmup 3]
//        [--concurrency 32] [--connections 2] [--pin off|on|both]
//        [--clean-threshold 10] [--only NAME,NAME] [--scenario 'NAME[/distinct]=FLAGS']...
//        [--markdown FILE] [--json FILE]
//
// bench/run.sh installs ghz and builds dist/ first; run that, not this
// (OPA_ENVOY=PATH bash bench/run.sh passes --opa-envoy). The OPA-Envoy binary
// is the user's own: this script never builds or downloads one.
//
// Every configuration gets its own server process. All of them are started, checked to allow the request, and warmed up for
// --warmup seconds (discarded). With OPA-Envoy, the request table of
// bench/opa-envoy/cases.json is first sent to an infergate server and to
// every OPA-Envoy server, and the run stops unless each answers every
// request as the table says (the two policies decide alike). Then --rounds rounds visit each server in
// turn, so slow drift or a burst of other load on the machine spreads over
// all configurations instead of landing on one. Each visit has two phases,
// driven by ghz:
//   saturation  closed loop, --concurrency in-flight calls over --connections
//               HTTP/2 connections for --duration seconds: max throughput,
//               and the latency that comes with it (mostly queueing);
//   fixed rate  --rate calls/s for --rate-duration seconds, below every
//               configuration's capacity: the service latency an Envoy
//               under moderate load would see.
// Percentiles are computed here from every call ghz records (its JSON
// `details`; ghz's own latencyDistribution stops at p99), over OK calls only,
// per round; the table shows the median across rounds. ghz times each call
// from send to response, so stalls are not corrected for coordinated
// omission. CPU use during each phase is read from /proc (server, and all
// busy time per CPU) and bash's `times` (ghz); what is left is other work on
// the machine. Rounds where that exceeds --clean-threshold % of the server's
// or ghz's CPU are left out of the medians when at least one round is clean.
// A server's CPU and RSS are those of its whole process tree (a server that
// forks workers is counted whole); RSS is read once after start-up (idle)
// and every 200 ms of each saturation phase (the peak is reported).
//
// Every measured answer must be an allow: infergate's own counters are read
// around each phase; OPA-Envoy, which counts no decisions, runs with
// bench/opa-envoy/checked.rego, so that a deny comes back as a gRPC error
// ghz records. Denies and errors fail the run.
//
// Cores: by default nothing is pinned (server and ghz share both CPUs; ghz
// uses GOMAXPROCS 2, OPA-Envoy GOMAXPROCS 2). --pin on puts the servers on CPU 0 and ghz on CPU 1
// with GOMAXPROCS 1 (OPA-Envoy, started under taskset, sees one CPU too); on the 2-CPU VM this was written on that gave lower
// throughput and p99 an order of magnitude worse at 1000 calls/s (tens of ms
// instead of a few), for the baseline as much as for infergate, so it is
// not the default. --pin both starts every server twice, pinned and not,
// visits all of them in the same rounds and prints a set of tables for
// each. See docs/benchmarks.md.
//
// The infergate rows are one server process: where infergate-authz has
// --workers (default: one per CPU), they run with --workers 1.
// --scenario adds an infergate configuration without editing this file:
// NAME=FLAGS runs infergate-authz with the extra FLAGS (split on spaces) on
// the repeated request, NAME/distinct=FLAGS on a distinct path per call;
// e.g. --scenario 'miss-nocache-w2=--cache-size 0 --workers 2'; a flag
// written node:FLAG goes to node (--scenario 'hit-semi16=node:--max-semi-space-size=16'). It is
// compared with OPA-Envoy's repeated or distinct row respectively.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { createServer, type AddressInfo } from 'node:net';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import { authorizationClient } from '../ext-authz/src/protos.js';
import { REPO_ROOT as ROOT } from '../ext-authz/src/repo-root.js';
import { disagreements, loadCases } from './opa-envoy/agreement.js';
import { CHECKED_DENY_MARKER, opaEnvoyArgs, opaEnvoyVersion, WHERE_TO_GET } from './opa-envoy/peer.js';

const CLI = join(ROOT, 'dist/ext-authz/src/cli.js');
const BASELINE = join(ROOT, 'dist/bench/allow-all-server.js');
const MANIFEST = join(ROOT, 'test/fixtures/manifests/example.yaml');
const CALL = 'envoy.service.auth.v3.Authorization/Check';

/** A sampled W3C trace context, so the traced scenario exports a span for every check. */
const SAMPLED_TRACEPARENT = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';

/** An allowed request under the example manifest (rule gateway-predicts), optionally for an end user. */
function checkRequest(path: string, traced = false, token: string | null = null): object {
  return {
    attributes: {
      source: { principal: 'spiffe://cluster.local/ns/gateway/sa/api-gateway' },
      request: {
        http: {
          method: 'POST',
          path,
          host: 'model-serving.ml.svc.cluster.local',
          headers: { ':path': path, ...(traced ? { traceparent: SAMPLED_TRACEPARENT } : {}), ...(token !== null ? { authorization: `Bearer ${token}` } : {}) },
        },
      },
    },
  };
}
const FIXED_PATH = '/v1/models/bert:predict';

interface Scenario {
  name: string;
  what: string;
  baseline?: boolean;
  /** OPA-Envoy instead of infergate: with checked.rego (every answer checked to be an allow) or exactly as config.yaml says. */
  opaEnvoy?: 'checked' | 'plain';
  /** Run only when named in --only. */
  optional?: boolean;
  /** Extra infergate-authz flags (ignored for the baseline and OPA-Envoy). */
  flags?: (tmp: string) => string[];
  /** Distinct path per call: `{{.RequestNumber}}` is expanded by ghz; RUN makes it unique per phase. */
  distinct?: boolean;
  decisionLogFile?: boolean;
  /** Requests carry a sampled traceparent. */
  traced?: boolean;
  /** Requests carry an end-user token: the same one every call, or a different one (a signature to verify) every call. */
  tokens?: 'one' | 'distinct';
}

/** The end-user set-up the token scenarios share: a manifest with endUsers, its JWKS, and signed tokens. */
interface TokenFixtures {
  manifest: string;
  one: string;
  distinct: string[];
}
let tokenFixtures: TokenFixtures | null = null;
/** More distinct tokens than the server's verified-token cache holds (10 000), cycled, so every call verifies. */
const DISTINCT_TOKENS = 25_000;

async function makeTokenFixtures(tmp: string): Promise<TokenFixtures> {
  const { exportJWK, generateKeyPair, SignJWT } = await import('jose');
  const { publicKey, privateKey } = await generateKeyPair('ES256');
  const iss = 'https://auth.bench.local';
  writeFileSync(join(tmp, 'jwks.json'), JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), kid: 'bench', alg: 'ES256' }] }));
  const manifest = join(tmp, 'manifest-end-users.yaml');
  writeFileSync(manifest, `${readFileSync(MANIFEST, 'utf8')}endUsers:
  delegates: [spiffe://cluster.local/ns/gateway/sa/api-gateway]
  claims: { tenant: org, tier: plan, scopes: scope }
  issuers: [{ issuer: ${iss}, audiences: [bench], jwks: { file: jwks.json } }]
`);
  const exp = Math.floor(Date.now() / 1000) + 3600;
  const sign = (sub: string) => new SignJWT({ iss, aud: 'bench', sub, org: 'acme', plan: 'premium', scope: 'predict', exp })
    .setProtectedHeader({ alg: 'ES256', kid: 'bench' }).sign(privateKey);
  const distinct: string[] = [];
  for (let i = 0; i < DISTINCT_TOKENS; i++) distinct.push(await sign(`user-${i}`));
  return { manifest, one: await sign('user-one'), distinct };
}

/** Where the traced scenario exports its spans: a local OTLP/HTTP sink that counts and discards them. */
let otlpSink = '';

const SCENARIOS: Scenario[] = [
  { name: 'baseline', what: 'bare grpc-js server, always allows', baseline: true },
  { name: 'hit', what: 'infergate, same request repeated: decision cache answers' },
  { name: 'miss-distinct', what: 'infergate, distinct path per call: cache misses, policy wasm every call', distinct: true },
  { name: 'miss-nocache', what: 'infergate --cache-size 0, same request: policy wasm every call', flags: () => ['--cache-size', '0'] },
  { name: 'opa-envoy', what: 'OPA-Envoy (opa-envoy-plugin, bench/opa-envoy/policy.rego + checked.rego), same request repeated: OPA topdown evaluates every call (it has no decision cache)', opaEnvoy: 'checked' },
  { name: 'opa-envoy-distinct', what: 'OPA-Envoy, distinct path per call, as miss-distinct', opaEnvoy: 'checked', distinct: true },
  {
    name: 'opa-envoy-unchecked',
    what: 'OPA-Envoy exactly as bench/opa-envoy/config.yaml says (decision envoy/authz/allow, no checked.rego): answers not checked; shows what the check costs',
    opaEnvoy: 'plain',
    optional: true,
  },
  {
    name: 'hit-declog',
    what: 'as "hit", with the decision log written to a file',
    decisionLogFile: true,
    flags: (tmp) => ['--decision-log', join(tmp, 'decisions.log')],
  },
  {
    name: 'token-hit',
    what: 'as "hit", for an end user: the same ES256 token every call (verified-token cache and decision cache answer)',
    tokens: 'one',
  },
  {
    name: 'token-verify',
    what: `as "hit", for an end user: a different ES256 token every call (${DISTINCT_TOKENS} cycled), so every call verifies a signature; the decision cache answers`,
    tokens: 'distinct',
  },
  {
    name: 'hit-traced',
    what: 'as "hit", every check traced: a sampled traceparent on each, a span per check exported over OTLP/HTTP to a local sink',
    traced: true,
    flags: () => ['--otlp-endpoint', otlpSink],
  },
];

interface Opts {
  ghz: string;
  /** An opa-envoy-plugin binary, and the OPA version it reports; null: OPA-Envoy rows are left out. */
  opaEnvoy: string | null;
  opaEnvoyVersion: string | null;
  duration: number;
  warmup: number;
  rateDuration: number;
  rate: number;
  concurrency: number;
  connections: number;
  /** The core layouts to measure: true = pinned, false = not; both when --pin both. */
  pins: boolean[];
  rounds: number;
  cleanThreshold: number;
  /** The scenarios to run, in order. */
  scenarios: Scenario[];
  markdown: string | null;
  json: string | null;
}

/** --scenario 'NAME[/distinct]=FLAGS': an infergate configuration with extra server flags (e.g. --workers N). */
function extraScenario(spec: string): Scenario {
  const m = /^([a-z0-9][a-z0-9-]*)(\/distinct)?=(.*)$/.exec(spec);
  if (!m) throw new Error(`--scenario: expected NAME=FLAGS or NAME/distinct=FLAGS (NAME of a-z, 0-9, -), got "${spec}"`);
  const extra = m[3]!.trim().split(/\s+/).filter((f) => f !== '');
  const distinct = m[2] !== undefined;
  return {
    name: m[1]!,
    what: `infergate ${extra.join(' ')}, ${distinct ? 'distinct path per call' : 'same request repeated'} (--scenario)`,
    ...(distinct ? { distinct: true } : {}),
    flags: () => extra,
  };
}

function parseOpts(): Opts {
  const { values } = parseArgs({
    strict: true,
    options: {
      ghz: { type: 'string', default: join(ROOT, '.tools/bin/ghz') },
      'opa-envoy': { type: 'string' },
      duration: { type: 'string', default: '4' },
      warmup: { type: 'string', default: '3' },
      'rate-duration': { type: 'string', default: '3' },
      rate: { type: 'string', default: '1000' },
      concurrency: { type: 'string', default: '32' },
      connections: { type: 'string', default: '2' },
      pin: { type: 'string', default: 'off' },
      rounds: { type: 'string', default: '4' },
      'clean-threshold': { type: 'string', default: '10' },
      only: { type: 'string' },
      scenario: { type: 'string', multiple: true },
      markdown: { type: 'string' },
      json: { type: 'string' },
    },
  });
  const num = (flag: string, v: string, min: number): number => {
    if (!/^[0-9]+$/.test(v) || Number(v) < min) throw new Error(`--${flag}: expected a whole number >= ${min}, got "${v}"`);
    return Number(v);
  };
  if (values.pin !== 'on' && values.pin !== 'off' && values.pin !== 'both') throw new Error(`--pin: expected on, off or both, got "${values.pin}"`);
  const extras = (values.scenario ?? []).map(extraScenario);
  const all = [...SCENARIOS, ...extras];
  for (const s of all) if (all.filter((x) => x.name === s.name).length > 1) throw new Error(`--scenario: "${s.name}" is already a scenario`);
  const only = values.only?.split(',').map((s) => s.trim()) ?? null;
  for (const n of only ?? []) if (!SCENARIOS.some((s) => s.name === n)) throw new Error(`--only: unknown scenario "${n}" (${SCENARIOS.map((s) => s.name).join(', ')})`);
  const opaEnvoy = values['opa-envoy'] ?? null;
  if (opaEnvoy === null && only?.some((n) => n.startsWith('opa-envoy'))) throw new Error(`--only names OPA-Envoy scenarios: ${WHERE_TO_GET}`);
  // --scenario configurations run whatever --only says.
  const scenarios = [
    ...(only ? SCENARIOS.filter((s) => only.includes(s.name)) : SCENARIOS.filter((s) => !s.optional && (opaEnvoy !== null || !s.opaEnvoy))),
    ...extras,
  ];
  const twoCpus = cpus().length >= 2;
  return {
    ghz: values.ghz,
    opaEnvoy,
    opaEnvoyVersion: opaEnvoy !== null && scenarios.some((s) => s.opaEnvoy) ? opaEnvoyVersion(opaEnvoy) : null,
    duration: num('duration', values.duration, 1),
    warmup: num('warmup', values.warmup, 0),
    rateDuration: num('rate-duration', values['rate-duration'], 0),
    rate: num('rate', values.rate, 1),
    concurrency: num('concurrency', values.concurrency, 1),
    connections: num('connections', values.connections, 1),
    pins: values.pin === 'both' && twoCpus ? [true, false] : [values.pin === 'on' && twoCpus],
    rounds: num('rounds', values.rounds, 1),
    cleanThreshold: num('clean-threshold', values['clean-threshold'], 0),
    scenarios,
    markdown: values.markdown ?? null,
    json: values.json ?? null,
  };
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      s.close(() => (typeof addr === 'object' && addr !== null ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

function pinned(cpu: number, pin: boolean, cmd: string, args: string[]): [string, string[]] {
  return pin ? ['taskset', ['-c', String(cpu), cmd, ...args]] : [cmd, args];
}

interface Server {
  child: ChildProcess;
  stderr: () => string;
}

/** A scenario that runs infergate-authz with --workers above 1. */
function manyWorkers(s: Scenario): boolean {
  const flags = s.flags?.('') ?? [];
  const i = flags.indexOf('--workers');
  return i >= 0 && Number(flags[i + 1]) > 1;
}

/** Whether this infergate-authz has --workers (then its default is one process per CPU). */
let serverHasWorkers: boolean | null = null;

/**
 * A scenario's extra infergate-authz flags. The infergate rows measure one
 * process: where the server has --workers, they get --workers 1 unless the
 * scenario sets --workers itself (as a --scenario row for all cores would).
 */
function infergateFlags(s: Scenario, tmp: string): string[] {
  const flags = s.flags?.(tmp) ?? [];
  serverHasWorkers ??= execFileSync(process.execPath, [CLI, '--help'], { encoding: 'utf8' }).includes('--workers');
  return serverHasWorkers && !flags.includes('--workers') ? [...flags, '--workers', '1'] : flags;
}

/**
 * infergate-authz's node argv. A flag written `node:FLAG` (in a --scenario)
 * goes to node itself, before the script: e.g. `node:--max-semi-space-size=16`
 * overrides the heap sizing the CLI gives itself (ext-authz/src/node-flags.ts).
 */
function infergateArgv(s: Scenario, ports: Ports, tmp: string): [string, string[]] {
  const flags = infergateFlags(s, tmp);
  const nodeFlags = flags.filter((f) => f.startsWith('node:')).map((f) => f.slice('node:'.length));
  return [process.execPath, [...nodeFlags, CLI, '--listen', `127.0.0.1:${ports.grpc}`, '--metrics', `127.0.0.1:${ports.metrics}`,
    '--manifest', s.tokens ? tokenFixtures!.manifest : MANIFEST, '--decision-log', 'off', '--log-level', 'warn', '--no-watch',
    ...flags.filter((f) => !f.startsWith('node:'))]];
}

interface Ports {
  /** The Authorization service. */
  grpc: number;
  /** infergate's /metrics; OPA-Envoy's diagnostic address. */
  metrics: number;
  /** OPA-Envoy's REST API (--addr), unused but always opened. */
  http: number;
}

function startServer(o: Opts, s: Scenario, ports: Ports, tmp: string, pin: boolean): Server {
  const node = (args: string[]): [string, string[]] => [process.execPath, args];
  const [bin, args] = s.opaEnvoy
    ? [o.opaEnvoy!, opaEnvoyArgs({ grpc: ports.grpc, http: ports.http, diagnostic: ports.metrics }, s.opaEnvoy === 'checked')]
    : s.baseline
      ? node([BASELINE, '--listen', `127.0.0.1:${ports.grpc}`])
      : infergateArgv(s, ports, tmp);
  const [cmd, argv] = pinned(0, pin, bin, args);
  const child = spawn(cmd, argv, { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => { err = (err + d.toString()).slice(-4000); });
  return { child, stderr: () => err };
}

async function stopServer(s: Server): Promise<void> {
  if (s.child.exitCode !== null || s.child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => s.child.once('exit', () => resolve()));
  s.child.kill('SIGTERM');
  const timer = setTimeout(() => s.child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}

type CheckResult = { status?: { code?: number }; ok_response?: unknown; denied_response?: unknown };

/**
 * Sends one Check until the server answers (or 20 s pass); the answer must be
 * an allow: status OK and, from infergate and the baseline, an ok_response
 * (OPA-Envoy sends none for a boolean decision; Envoy needs none).
 */
async function waitAllowed(port: number, path: string, server: Server, token: string | null, okResponse: boolean): Promise<void> {
  const Client = authorizationClient();
  const client = new Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure()) as unknown as {
    Check(req: object, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res: CheckResult) => void): void;
    close(): void;
  };
  const deadline = Date.now() + 20_000;
  try {
    for (;;) {
      if (server.child.exitCode !== null) throw new Error(`server exited with code ${server.child.exitCode}: ${server.stderr().trim()}`);
      const res = await new Promise<CheckResult | null>((resolve, reject) => {
        client.Check(checkRequest(path, false, token), { deadline: Date.now() + 1000 }, (err, r) => {
          // checked.rego's way of saying "denied" (see bench/opa-envoy/checked.rego).
          if (err?.details.includes(CHECKED_DENY_MARKER)) reject(new Error(`probe Check was denied by OPA-Envoy: ${err.details}`));
          else resolve(err ? null : r);
        });
      });
      if (res !== null) {
        if (res.status?.code !== undefined && res.status.code !== 0) throw new Error(`probe Check was not allowed: ${JSON.stringify(res)}`);
        if (res.denied_response !== undefined) throw new Error(`probe Check was denied: ${JSON.stringify(res)}`);
        if (okResponse && res.ok_response === undefined) throw new Error(`probe Check has no ok_response: ${JSON.stringify(res)}`);
        return;
      }
      if (Date.now() > deadline) throw new Error(`server on port ${port} did not answer within 20 s: ${server.stderr().trim()}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  } finally {
    client.close();
  }
}

interface GhzDetail { latency: number; status: string; error: string }
interface GhzReport { count: number; total: number; rps: number; details?: GhzDetail[]; statusCodeDistribution?: Record<string, number> }

interface Phase {
  calls: number;
  ok: number;
  /** Non-OK calls other than the few cut off when ghz closes its connections at the end. */
  errors: number;
  cutOff: number;
  seconds: number;
  rps: number;
  p50: number;
  p99: number;
  p999: number;
  max: number;
  cpu: CpuUse | null;
  /** Counted errors by status and message (first 120 characters). */
  errorKinds: Record<string, number>;
  /** Calls OPA-Envoy denied (checked.rego's error), counted apart from the errors. */
  denied: number;
}

/** Nearest-rank percentile of sorted values (ms). */
function pct(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

/** Runs ghz to completion; resolves with the CPU seconds ghz used (from bash's `times`). */
function runGhz(o: Opts, pin: boolean, port: number, dataFile: string, outFile: string, mode: { seconds: number; rate?: number }): Promise<number> {
  const args = [
    '--insecure', '--proto', join(ROOT, 'proto/envoy/service/auth/v3/external_auth.proto'), '-i', join(ROOT, 'proto'),
    '--call', CALL, '-D', dataFile, '-c', String(o.concurrency), '--connections', String(o.connections),
    '-z', `${mode.seconds}s`, ...(mode.rate !== undefined ? ['-r', String(mode.rate)] : []),
    ...(pin ? ['--cpus', '1'] : []), '-O', 'json', '-o', outFile, `127.0.0.1:${port}`,
  ];
  const [cmd, argv] = pinned(1, pin, o.ghz, args);
  const script = '"$@"; rc=$?; times >&2; exit $rc';
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['-c', script, 'ghz', cmd, ...argv], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    child.once('error', reject);
    child.once('exit', (code) => {
      const lines = err.trim().split('\n');
      const children = lines.pop() ?? '';
      lines.pop(); // the shell's own times
      if (code !== 0) return reject(new Error(`ghz exited with ${code}: ${lines.join('\n').trim()}`));
      const t = [...children.matchAll(/([0-9]+)m([0-9.]+)s/g)].reduce((sum, m) => sum + Number(m[1]) * 60 + Number(m[2]), 0);
      resolve(t);
    });
  });
}

function summarise(o: Opts, outFile: string): Phase {
  const r = JSON.parse(readFileSync(outFile, 'utf8')) as GhzReport;
  const details = r.details ?? [];
  const lat: number[] = [];
  let cutOff = 0;
  let errors = 0;
  let denied = 0;
  const errorKinds: Record<string, number> = {};
  const cutOffKind = 'Unavailable/Canceled: connection closed by ghz (more than --concurrency of them)';
  for (const d of details) {
    if (d.status === 'OK' && d.error === '') lat.push(d.latency / 1e6);
    else if (d.error.includes(CHECKED_DENY_MARKER)) denied++;
    // When -z expires ghz closes its connections under the calls still in flight.
    else if ((d.status === 'Unavailable' && d.error.includes('use of closed network connection')) ||
      (d.status === 'Canceled' && d.error.includes('the client connection is closing'))) cutOff++;
    else {
      errors++;
      const k = `${d.status}: ${d.error.slice(0, 120)}`;
      errorKinds[k] = (errorKinds[k] ?? 0) + 1;
    }
  }
  if (cutOff > o.concurrency) {
    errors += cutOff;
    errorKinds[cutOffKind] = cutOff;
    cutOff = 0;
  }
  const sorted = Float64Array.from(lat).sort();
  const seconds = r.total / 1e9;
  return {
    calls: r.count,
    ok: lat.length,
    errors,
    cutOff,
    seconds,
    rps: lat.length / seconds,
    p50: pct(sorted, 50),
    p99: pct(sorted, 99),
    p999: pct(sorted, 99.9),
    max: sorted.length ? sorted[sorted.length - 1]! : NaN,
    cpu: null,
    errorKinds,
    denied,
  };
}

async function scrapeMetrics(port: number): Promise<Record<string, number>> {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`);
  const text = await res.text();
  const out: Record<string, number> = {};
  for (const line of text.split('\n')) {
    const m = /^(infergate_decision_cache_(?:hits|misses)_total|infergate_decisions_total\{[^}]*result="(?:allow|deny)"[^}]*\}) ([0-9.e+]+)$/.exec(line);
    if (m) {
      const key = m[1]!.startsWith('infergate_decisions_total') ? (m[1]!.includes('result="allow"') ? 'allow' : 'deny') : m[1]!.includes('hits') ? 'hits' : 'misses';
      out[key] = (out[key] ?? 0) + Number(m[2]);
    }
  }
  return out;
}

/** CPU jiffies from /proc: busy time per CPU, and a process's own user+system time. */
function cpuBusy(): number[] {
  try {
    return readFileSync('/proc/stat', 'utf8').split('\n').filter((l) => /^cpu[0-9]+ /.test(l)).map((l) => {
      const f = l.trim().split(/\s+/).slice(1).map(Number);
      // user nice system idle iowait irq softirq steal: everything but idle and iowait
      return (f[0] ?? 0) + (f[1] ?? 0) + (f[2] ?? 0) + (f[5] ?? 0) + (f[6] ?? 0) + (f[7] ?? 0);
    });
  } catch {
    return [];
  }
}

/** /proc/PID/stat after the command name: f[1] is the parent pid, f[11] and f[12] user and system time (fields 4, 14, 15). */
function statFields(pid: number): string[] | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return null;
  }
}

/** The process and all its descendants (a server that forks workers is measured whole). */
function processTree(pid: number | undefined): number[] {
  if (pid === undefined) return [];
  const children = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    if (!/^[0-9]+$/.test(name)) continue;
    const ppid = Number(statFields(Number(name))?.[1]);
    if (Number.isFinite(ppid)) children.set(ppid, [...(children.get(ppid) ?? []), Number(name)]);
  }
  const out: number[] = [];
  for (const queue = [pid]; queue.length > 0;) {
    const p = queue.shift()!;
    out.push(p);
    queue.push(...(children.get(p) ?? []));
  }
  return out;
}

/** User+system jiffies of a process tree; NaN when the process is gone. */
function procCpu(pid: number | undefined): number {
  const tree = processTree(pid);
  if (tree.length === 0 || statFields(tree[0]!) === null) return NaN;
  return tree.reduce((sum, p) => {
    const f = statFields(p);
    return sum + (f ? Number(f[11]) + Number(f[12]) : 0);
  }, 0);
}

/** Resident set size of a process tree, in MiB (VmRSS; pages shared between processes count in each). */
function procRssMiB(pid: number | undefined): number {
  let kib = 0;
  for (const p of processTree(pid)) {
    try {
      kib += Number(/^VmRSS:\s+([0-9]+) kB$/m.exec(readFileSync(`/proc/${p}/status`, 'utf8'))?.[1] ?? 0);
    } catch {
      // exited meanwhile
    }
  }
  return kib > 0 ? kib / 1024 : NaN;
}

/** Where the CPU went during a phase, in % of one CPU. */
interface CpuUse {
  server: number;
  /** The server's CPU time over the phase, seconds. */
  serverSeconds: number;
  ghz: number;
  /** Everything else on the server's CPU and on ghz's CPU (pinned), or on both CPUs together (not pinned). */
  othersServerCpu: number;
  othersGhzCpu: number;
}

interface CpuMark { busy: number[]; server: number; at: bigint }

function cpuMark(pid: number | undefined): CpuMark {
  return { busy: cpuBusy(), server: procCpu(pid), at: process.hrtime.bigint() };
}

function cpuUse(pin: boolean, before: CpuMark, after: CpuMark, ghzSeconds: number): CpuUse {
  const hz = 100; // USER_HZ on Linux
  const seconds = Number(after.at - before.at) / 1e9;
  const pc = (jiffies: number): number => (jiffies / hz / seconds) * 100;
  const server = pc(after.server - before.server);
  const serverSeconds = (after.server - before.server) / hz;
  const ghz = (ghzSeconds / seconds) * 100;
  const busy = (i: number): number => pc((after.busy[i] ?? NaN) - (before.busy[i] ?? NaN));
  if (pin) return { server, serverSeconds, ghz, othersServerCpu: Math.max(0, busy(0) - server), othersGhzCpu: Math.max(0, busy(1) - ghz) };
  const all = after.busy.reduce((x, y) => x + y, 0) - before.busy.reduce((x, y) => x + y, 0);
  const others = Math.max(0, pc(all) - server - ghz);
  return { server, serverSeconds, ghz, othersServerCpu: others, othersGhzCpu: others };
}

interface Round {
  saturation: Phase;
  fixedRate: Phase | null;
  /** From the server's own counters, over this round's measured phases. */
  cache: { hits: number; misses: number } | null;
  /** Denied calls: from infergate's counters, from OPA-Envoy's answers (checked.rego); null where nothing counts them. */
  denies: number | null;
  /** Highest RSS sampled during the saturation phase, MiB. */
  rssPeak: number;
}

interface Running {
  scenario: Scenario;
  pin: boolean;
  server: Server;
  port: number;
  metricsPort: number;
  /** RSS once started and probed, before any load, MiB. */
  rssIdle: number;
}

async function startScenario(o: Opts, s: Scenario, tmp: string, pin: boolean): Promise<Running> {
  const port = await freePort();
  const metricsPort = await freePort();
  const server = startServer(o, s, { grpc: port, metrics: metricsPort, http: s.opaEnvoy ? await freePort() : 0 }, tmp, pin);
  try {
    await waitAllowed(port, s.distinct ? '/v1/models/probe:predict' : FIXED_PATH, server, s.tokens ? tokenFixtures!.one : null, !s.opaEnvoy);
  } catch (err) {
    await stopServer(server);
    throw err;
  }
  return { scenario: s, pin, server, port, metricsPort, rssIdle: procRssMiB(server.child.pid) };
}

function dataFile(s: Scenario, tmp: string, tag: string): string {
  const file = join(tmp, `${s.name}-${tag}.json`);
  // A phase-unique prefix so no phase can hit entries cached by an earlier one.
  const path = s.distinct ? `/v1/models/${tag}-{{.RequestNumber}}:predict` : FIXED_PATH;
  // ghz sends the messages of an array in turn, one per call.
  if (s.tokens === 'distinct') writeFileSync(file, JSON.stringify(tokenFixtures!.distinct.map((t) => checkRequest(path, false, t))));
  else writeFileSync(file, JSON.stringify(checkRequest(path, s.traced ?? false, s.tokens === 'one' ? tokenFixtures!.one : null)));
  return file;
}

async function warmUp(o: Opts, r: Running, tmp: string, runId: number): Promise<void> {
  if (o.warmup > 0) void await runGhz(o, r.pin, r.port, dataFile(r.scenario, tmp, `r${runId}w${r.pin ? 'p' : 'u'}`), join(tmp, 'ghz.json'), { seconds: o.warmup });
}

async function runRound(o: Opts, r: Running, tmp: string, tag: string): Promise<Round> {
  const s = r.scenario;
  const out = join(tmp, 'ghz.json');
  const infergate = !s.baseline && !s.opaEnvoy;
  const before = infergate ? await scrapeMetrics(r.metricsPort) : null;
  const pid = r.server.child.pid;
  tag += r.pin ? 'p' : 'u';
  let mark = cpuMark(pid);
  let rssPeak = procRssMiB(pid);
  const sampler = setInterval(() => { rssPeak = Math.max(rssPeak, procRssMiB(pid)); }, 200);
  let ghzCpu: number;
  try {
    ghzCpu = await runGhz(o, r.pin, r.port, dataFile(s, tmp, `${tag}s`), out, { seconds: o.duration });
  } finally {
    clearInterval(sampler);
  }
  const saturation = { ...summarise(o, out), cpu: cpuUse(r.pin, mark, cpuMark(pid), ghzCpu) };
  let fixedRate: Phase | null = null;
  if (o.rateDuration > 0) {
    mark = cpuMark(pid);
    ghzCpu = await runGhz(o, r.pin, r.port, dataFile(s, tmp, `${tag}r`), out, { seconds: o.rateDuration, rate: o.rate });
    fixedRate = { ...summarise(o, out), cpu: cpuUse(r.pin, mark, cpuMark(pid), ghzCpu) };
  }
  const after = infergate ? await scrapeMetrics(r.metricsPort) : null;
  const delta = (k: string): number => (after?.[k] ?? 0) - (before?.[k] ?? 0);
  if (r.server.child.exitCode !== null) throw new Error(`${s.name}: server exited during the run: ${r.server.stderr().trim()}`);
  const counted = delta('hits') + delta('misses') > 0;
  return {
    saturation,
    fixedRate,
    cache: counted ? { hits: delta('hits'), misses: delta('misses') } : null,
    denies: infergate ? delta('deny') : s.opaEnvoy === 'checked' ? saturation.denied + (fixedRate?.denied ?? 0) : null,
    rssPeak,
  };
}

interface Result {
  scenario: Scenario;
  pin: boolean;
  rssIdle: number;
  rounds: Round[];
  decisionLogBytes: number | null;
}

function median(xs: number[]): number {
  const v = xs.filter(Number.isFinite).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  const m = Math.floor(v.length / 2);
  return v.length % 2 ? v[m]! : (v[m - 1]! + v[m]!) / 2;
}

/**
 * The per-round statistics of one phase, reduced to their medians across
 * rounds. Rounds in which other processes took more than --clean-threshold
 * % of the server's or ghz's CPU are left out when at least one round is clean.
 */
interface Summary {
  rps: number; rpsMin: number; rpsMax: number; p50: number; p99: number; p999: number; max: number;
  errors: number; cutOff: number; used: number; of: number; contended: boolean;
  server: number; ghz: number; others: number;
  /** Server CPU per answered call, µs. */
  cpuPerCall: number;
}

function isClean(o: Opts, p: Phase): boolean {
  return p.cpu !== null && p.cpu.othersServerCpu <= o.cleanThreshold && p.cpu.othersGhzCpu <= o.cleanThreshold;
}

function summaryOf(o: Opts, all: Phase[]): Summary {
  const clean = all.filter((p) => isClean(o, p));
  const phases = clean.length > 0 ? clean : all;
  return {
    rps: median(phases.map((p) => p.rps)),
    rpsMin: Math.min(...phases.map((p) => p.rps)),
    rpsMax: Math.max(...phases.map((p) => p.rps)),
    p50: median(phases.map((p) => p.p50)),
    p99: median(phases.map((p) => p.p99)),
    p999: median(phases.map((p) => p.p999)),
    max: Math.max(...phases.map((p) => p.max)),
    errors: all.reduce((a, p) => a + p.errors, 0),
    cutOff: all.reduce((a, p) => a + p.cutOff, 0),
    used: phases.length,
    of: all.length,
    contended: clean.length === 0,
    server: median(phases.map((p) => p.cpu?.server ?? NaN)),
    ghz: median(phases.map((p) => p.cpu?.ghz ?? NaN)),
    others: median(phases.map((p) => Math.max(p.cpu?.othersServerCpu ?? NaN, p.cpu?.othersGhzCpu ?? NaN))),
    cpuPerCall: median(phases.map((p) => ((p.cpu?.serverSeconds ?? NaN) * 1e6) / p.calls)),
  };
}

function statOrNull(file: string): number | null {
  try {
    return statSync(file).size;
  } catch {
    return null;
  }
}

const f0 = (n: number): string => (Number.isFinite(n) ? Math.round(n).toString() : '-');
const f2 = (n: number): string => (Number.isFinite(n) ? n.toFixed(2) : '-');
const ratio = (a: number, b: number): string => (Number.isFinite(a) && Number.isFinite(b) && b > 0 ? `${(a / b).toFixed(2)}x` : '-');

function table(headers: string[], rows: string[][], markdown: boolean): string {
  if (markdown) {
    const line = (cells: string[]): string => `| ${cells.join(' | ')} |`;
    return [line(headers), line(headers.map((_, i) => (i === 0 ? '---' : '---:'))), ...rows.map(line)].join('\n');
  }
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(headers), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

/** The OPA-Envoy row a scenario is compared with: distinct paths with distinct paths, the repeated request with the repeated request. */
function opaEnvoyPeer(s: Scenario, results: Result[]): Result | undefined {
  const find = (name: string): Result | undefined => results.find((r) => r.scenario.name === name);
  return s.distinct ? find('opa-envoy-distinct') ?? find('opa-envoy') : find('opa-envoy') ?? find('opa-envoy-distinct');
}

/** The tables for one core layout (pinned or not): `results` are the scenarios measured with it. */
function report(o: Opts, results: Result[], pin: boolean, markdown: boolean): string {
  const base = results.find((r) => r.scenario.baseline);
  const sat = (r: Result): Summary => summaryOf(o, r.rounds.map((x) => x.saturation));
  const fixed = (r: Result): Summary | null => (r.rounds.every((x) => x.fixedRate) ? summaryOf(o, r.rounds.map((x) => x.fixedRate!)) : null);
  const used = (p: Summary): string => `${p.used}/${p.of}${p.contended ? ' (all contended)' : ''}`;
  const cpu = (p: Summary): string => `${f0(p.server)} / ${f0(p.ghz)} / ${f0(p.others)}`;
  const rssPeak = (r: Result): number => Math.max(...r.rounds.map((x) => x.rssPeak).filter(Number.isFinite));
  const out: string[] = [];
  out.push(pin
    ? 'Cores pinned: each server (all its threads) on CPU 0 with taskset, ghz on CPU 1 with GOMAXPROCS=1 (--cpus 1); OPA-Envoy, started under taskset, runs with GOMAXPROCS=1.'
    : 'Cores not pinned: servers and ghz share both CPUs (ghz and OPA-Envoy with GOMAXPROCS=2; infergate-authz is one Node process).');
  out.push('');
  const b = base ? sat(base) : null;
  const satRows = results.map((r) => {
    const p = sat(r);
    const hits = r.rounds.reduce((a, x) => a + (x.cache?.hits ?? 0), 0);
    const misses = r.rounds.reduce((a, x) => a + (x.cache?.misses ?? 0), 0);
    const cache = r.scenario.baseline ? '-' : r.scenario.opaEnvoy ? 'none' : hits + misses > 0 ? `${((100 * hits) / (hits + misses)).toFixed(1)}%` : 'off';
    return [r.scenario.name, f0(p.rps), `${f0(p.rpsMin)}-${f0(p.rpsMax)}`, f2(p.p50), f2(p.p99), f2(p.p999), String(p.errors), cache,
      used(p), cpu(p), f0(p.cpuPerCall), `${f0(r.rssIdle)} / ${f0(rssPeak(r))}`,
      b ? ratio(p.rps, b.rps) : '-', b ? ratio(p.p50, b.p50) : '-', b ? ratio(p.p99, b.p99) : '-'];
  });
  const roundsNote = `median over the rounds in which other processes used at most ${o.cleanThreshold}% of either CPU ("rounds used"; all rounds if none was that quiet)`;
  out.push(`Saturation: closed loop, ${o.concurrency} concurrent calls over ${o.connections} HTTP/2 connection(s), ${o.duration} s per round; ${roundsNote}. Latency in ms; ratios vs baseline.`);
  out.push(table(['scenario', 'calls/s', 'calls/s range', 'p50', 'p99', 'p99.9', 'errors', 'cache hits', 'rounds used',
    'CPU% server / ghz / others', 'server CPU µs/call', 'RSS MiB idle / saturated', 'calls/s vs base', 'p50 vs base', 'p99 vs base'], satRows, markdown));
  if (results.every((r) => fixed(r))) {
    const bf = base ? fixed(base) : null;
    const rateRows = results.map((r) => {
      const p = fixed(r)!;
      return [r.scenario.name, f0(p.rps), f2(p.p50), f2(p.p99), f2(p.p999), f2(p.max), String(p.errors), used(p), cpu(p),
        bf ? ratio(p.p50, bf.p50) : '-', bf ? ratio(p.p99, bf.p99) : '-', bf ? ratio(p.p999, bf.p999) : '-'];
    });
    out.push('');
    out.push(`Fixed rate: ${o.rate} calls/s offered (ghz -r, at most ${o.concurrency} in flight, ${o.connections} connection(s)), ` +
      `${o.rateDuration} s per round; same rule for rounds; max is the worst single call in the rounds used. Latency in ms; ratios vs baseline.`);
    out.push(table(['scenario', 'calls/s', 'p50', 'p99', 'p99.9', 'max', 'errors', 'rounds used', 'CPU% server / ghz / others',
      'p50 vs base', 'p99 vs base', 'p99.9 vs base'], rateRows, markdown));
  }
  const others = results.filter((r) => !r.scenario.opaEnvoy);
  if (results.some((r) => r.scenario.opaEnvoy) && others.length > 0) {
    const rows = others.map((r) => {
      const peer = opaEnvoyPeer(r.scenario, results)!;
      const [p, q] = [sat(r), sat(peer)];
      const [pf, qf] = [fixed(r), fixed(peer)];
      return [r.scenario.name, peer.scenario.name, ratio(p.rps, q.rps), ratio(p.cpuPerCall, q.cpuPerCall),
        pf && qf ? ratio(pf.p50, qf.p50) : '-', pf && qf ? ratio(pf.p99, qf.p99) : '-', ratio(rssPeak(r), rssPeak(peer))];
    });
    out.push('');
    out.push('Against OPA-Envoy (same run, same cores): each scenario over the OPA-Envoy row with the same request mix (the repeated request, or a distinct path per call). ' +
      'Above 1 is more for calls/s, worse for everything else.');
    out.push(table(['scenario', 'vs', 'calls/s', 'server CPU per call', `p50 at ${o.rate}/s`, `p99 at ${o.rate}/s`, 'RSS saturated'], rows, markdown));
  }
  out.push('');
  out.push(`"CPU% server / ghz / others": median % of one CPU used by the server process, by ghz, and the most that other processes ` +
    `used of ${pin ? 'the server\'s CPU or of ghz\'s CPU' : 'the two CPUs'}, from /proc (busy time not charged to the server or ghz: ` +
    'other work on the machine, and kernel interrupt time). "server CPU µs/call": the server\'s user+system time over the saturation phase / calls answered. ' +
    '"RSS MiB": resident set size of the server\'s process tree, once started (idle), and the highest of the samples taken every 200 ms during the saturation phases (saturated).');
  out.push(markdown ? '\nScenarios:\n' : 'Scenarios:');
  for (const r of results) out.push(`${markdown ? '- `' : '  '}${r.scenario.name}${markdown ? '`:' : ':'} ${r.scenario.what}`);
  const notes: string[] = [];
  for (const r of results) {
    const denies = r.rounds.reduce((a, x) => a + (x.denies ?? 0), 0);
    if (denies) notes.push(`${r.scenario.name}: ${denies} calls were denied (expected 0)`);
    if (r.scenario.opaEnvoy === 'plain') notes.push(`${r.scenario.name}: answers not checked (allow and deny are both gRPC OK without checked.rego)`);
    for (const x of r.rounds) {
      for (const p of [x.saturation, x.fixedRate]) {
        for (const [k, n] of Object.entries(p?.errorKinds ?? {})) notes.push(`${r.scenario.name}: ${n} error(s) ${k}`);
      }
    }
    if (r.decisionLogBytes !== null) notes.push(`${r.scenario.name}: decision log file grew to ${(r.decisionLogBytes / 1e6).toFixed(1)} MB`);
    const cut = sat(r).cutOff + (fixed(r)?.cutOff ?? 0);
    if (cut > 0) notes.push(`${r.scenario.name}: ${cut} in-flight calls cut off when ghz closed its connections at the end of a phase (not counted)`);
  }
  if (notes.length) {
    out.push('');
    out.push(...notes.map((n) => (markdown ? `- ${n}` : `  note: ${n}`)));
  }
  return out.join('\n');
}

/** Accepts OTLP/HTTP exports and counts the spans in them, so the traced scenario pays the full export. */
async function startOtlpSink(): Promise<{ url: string; spans: () => number; close: () => void }> {
  let spans = 0;
  const server = createHttpServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString();
      spans += (text.match(/"spanId"/g) ?? []).length;
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}/v1/traces`, spans: () => spans, close: () => server.close() };
}

/**
 * Sends the request table (bench/opa-envoy/cases.json) to one infergate
 * server and to every OPA-Envoy server; fails the run unless each answers
 * every request as the table says, so the two are measured deciding alike.
 */
async function checkAgreement(running: Running[]): Promise<void> {
  const cases = loadCases();
  const infergate = running.find((r) => !r.scenario.baseline && !r.scenario.opaEnvoy && !r.scenario.tokens && !r.scenario.traced);
  const peers = running.filter((r) => r.scenario.opaEnvoy);
  const checked = [...(infergate ? [infergate] : []), ...peers];
  for (const r of checked) {
    const wrong = await disagreements(r.port, cases);
    if (wrong.length > 0) {
      throw new Error(`${r.scenario.name}${r.pin ? ' (pinned)' : ''} does not decide as bench/opa-envoy/cases.json says, so the comparison would not be fair:\n  ${wrong.join('\n  ')}`);
    }
  }
  const allowed = cases.filter((c) => c.allowed).length;
  console.log(`agreement: the ${cases.length} requests of bench/opa-envoy/cases.json (${allowed} allowed, ${cases.length - allowed} denied) sent to ` +
    `${checked.map((r) => `${r.scenario.name}${bothLayouts(running) ? (r.pin ? ' (pinned)' : ' (not pinned)') : ''}`).join(', ')}: every answer as the table says` +
    (infergate ? '' : ' (no infergate server in this run; the table itself is checked against infergate by test/bench/opa-envoy-policy.test.ts)'));
}

/** Whether the run has both core layouts (then names say which). */
function bothLayouts(running: Running[]): boolean {
  return running.some((r) => r.pin) && running.some((r) => !r.pin);
}

async function main(): Promise<void> {
  const o = parseOpts();
  const scenarios = o.scenarios;
  const cpu = cpus();
  const load = (): string => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  console.log(`machine: ${cpu.length} CPUs (${cpu[0]?.model.trim() ?? 'unknown'}), node ${process.version}, ghz ${o.ghz}`);
  if (o.opaEnvoyVersion !== null) console.log(`OPA-Envoy: ${o.opaEnvoy} (opa-envoy-plugin, OPA ${o.opaEnvoyVersion}), policy bench/opa-envoy/policy.rego`);
  else if (o.opaEnvoy === null) console.log(`OPA-Envoy rows left out: ${WHERE_TO_GET}.`);
  const layout = (pin: boolean): string => (pin
    ? 'pinned (servers, all their threads, on CPU 0 with taskset; ghz on CPU 1 with GOMAXPROCS=1)'
    : 'not pinned (servers and ghz share all CPUs)');
  console.log(`cores: ${o.pins.map(layout).join('; and, every server started again, ')}`);
  console.log(`plan: every server started and warmed up (${o.warmup} s) first, then ${o.rounds} round(s) visiting each in turn: ` +
    `saturation ${o.duration} s, fixed rate ${o.rate}/s for ${o.rateDuration} s; load average at start ${load()}`);
  const tmp = mkdtempSync(join(tmpdir(), 'infergate-bench-'));
  const sink = await startOtlpSink();
  otlpSink = sink.url;
  if (scenarios.some((s) => s.tokens)) tokenFixtures = await makeTokenFixtures(tmp);
  const running: Running[] = [];
  const results: Result[] = [];
  const runId = Date.now() % 1_000_000;
  const label = (r: Running): string => `${r.scenario.name}${o.pins.length > 1 ? (r.pin ? '[pin]' : '[free]') : ''}`;
  try {
    // Pinned and unpinned servers of a scenario side by side, so each round visits them in turn.
    for (const s of scenarios) {
      for (const pin of o.pins) {
        // Several workers on the one pinned CPU measure nothing: those rows are for all cores.
        if (pin && manyWorkers(s)) continue;
        const r = await startScenario(o, s, tmp, pin);
        running.push(r);
        await warmUp(o, r, tmp, runId);
        results.push({ scenario: s, pin, rssIdle: r.rssIdle, rounds: [], decisionLogBytes: null });
      }
    }
    if (running.some((r) => r.scenario.opaEnvoy)) await checkAgreement(running);
    for (let i = 0; i < o.rounds; i++) {
      process.stdout.write(`  round ${i + 1}/${o.rounds}:`);
      for (const [k, r] of running.entries()) {
        const round = await runRound(o, r, tmp, `r${runId}n${i}`);
        results[k]!.rounds.push(round);
        process.stdout.write(` ${label(r)} ${f0(round.saturation.rps)}/s${isClean(o, round.saturation) ? '' : '*'}`);
      }
      process.stdout.write('\n');
    }
    console.log(`  (* = other processes took more than ${o.cleanThreshold}% of a CPU during that saturation phase)`);
    for (const [k, r] of running.entries()) {
      if (r.scenario.decisionLogFile) results[k]!.decisionLogBytes = statOrNull(join(tmp, 'decisions.log'));
    }
  } finally {
    await Promise.all(running.map((r) => stopServer(r.server)));
    sink.close();
    rmSync(tmp, { recursive: true, force: true });
  }
  if (scenarios.some((s) => s.traced)) console.log(`spans received by the OTLP sink: ${sink.spans()}`);
  console.log(`load average at end ${load()}`);
  const reports = (markdown: boolean): string => o.pins
    .map((pin) => report(o, results.filter((r) => r.pin === pin), pin, markdown))
    .join(markdown ? '\n\n' : '\n\n----\n\n');
  console.log('');
  console.log(reports(false));
  if (o.markdown) writeFileSync(o.markdown, reports(true) + '\n');
  if (o.json) {
    writeFileSync(o.json, JSON.stringify({
      options: { ...o, scenarios: o.scenarios.map((s) => s.name) },
      results: results.map((r) => ({ ...r, scenario: r.scenario.name })),
    }, null, 2) + '\n');
  }
  const failed = results.filter((r) => r.rounds.some((x) => x.saturation.errors > 0 || (x.fixedRate?.errors ?? 0) > 0 || (x.denies ?? 0) > 0));
  if (failed.length) {
    console.error(`errors or denies in: ${[...new Set(failed.map((r) => r.scenario.name))].join(', ')}`);
    process.exitCode = 1;
  }
}

main().catch((err: unknown) => {
  console.error(`authz-bench: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
