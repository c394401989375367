import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renderBootstrap } from '../../envoy/bootstrap.js';
import { AuthzError } from '../../ext-authz/src/errors.js';
import { globToRegex } from '../../ext-authz/src/manifest.js';
import { normalisePath, type PathOptions } from '../../ext-authz/src/path.js';
import { BACKENDS, startBackend, type Backend, type BackendName } from '../backends/backends.js';
import { evidenceTable } from '../backends/evidence-table.js';
import { outcome, served, type Decision, type Outcome } from '../backends/outcome.js';
import { pool, rawGet, rawGetTls, type RawReply, type TlsClient } from '../backends/raw-http.js';
import { DENY_GLOB, TARGETS } from '../backends/targets.js';
import { startAuthzProcess, type AuthzProcess } from '../helpers/authz-process.js';
import { startEnvoy, type EnvoyHandle } from '../helpers/envoy.js';
import { ROOT, requireBundle } from '../helpers/paths.js';
import { makePki } from '../helpers/pki.js';

/**
 * "The path infergate authorises is the path the backend serves", checked
 * against real servers: every target of test/backends/targets.ts goes as raw
 * bytes to every echo backend of test/backends (Tomcat, Jetty, Netty,
 * uvicorn, werkzeug, Go, nginx, Node), once straight and once through the
 * real Envoy + infergate-authz. The table printed at the end is the evidence
 * for docs/ext-authz.md's account of how servers read paths.
 */

const CLIENT = 'spiffe://cluster.local/ns/gateway/sa/client';
const MANIFEST = `trustDomains: [cluster.local]
rules:
  - name: everything
    callers: [${CLIENT}]
    paths: ["/**"]
  - name: no-weights
    action: deny
    callers: ["spiffe://cluster.local/*"]
    paths: ["${DENY_GLOB}"]
`;
const DENIED = new RegExp(globToRegex(DENY_GLOB));
const NAMES = BACKENDS.map((b) => b.name);
const SERVLETS = BACKENDS.filter((b) => b.servlet).map((b) => b.name);

type Accepted = { readonly path: string } | { readonly refused: string };

function infergate(target: string, opts?: PathOptions): Accepted {
  try {
    return { path: normalisePath(target, opts) };
  } catch (err) {
    if (err instanceof AuthzError) return { refused: err.message };
    throw err;
  }
}

/** Direct: if infergate accepts a target, the backend refuses it, redirects it, or serves exactly infergate's path. */
function directViolation(b: Backend, target: string, o: Outcome, accepted: Accepted): string | null {
  if ('refused' in accepted) return null;
  if (o.status >= 300 && o.status < 500) return null;
  if (o.status === 200 && served(b, o.path!) === accepted.path) return null;
  return `${JSON.stringify(target)}: infergate matches rules on ${JSON.stringify(accepted.path)}, ${b.name} answered ${o.status}${o.path !== undefined ? ` routing on ${JSON.stringify(o.path)}` : ''}${o.error ? ` (${o.error})` : ''}`;
}

const host = (i: number, b: BackendName): string => `t${i}.${b}.paths.test`;

/** One target sent to one backend; i is the target's index in TARGETS. */
interface Job {
  readonly n: BackendName;
  readonly t: string;
  readonly i: number;
}

async function retry(send: () => Promise<RawReply>, again: (r: RawReply) => boolean, tries = 3): Promise<RawReply> {
  let reply = await send();
  for (let k = 1; k < tries && again(reply); k++) reply = await send();
  return reply;
}

/**
 * Envoy takes an absolute-form target's authority as the Host, which would
 * lose the per-request Host the decision log is correlated by; that row
 * gets the unique Host as its authority instead (same shape of target).
 */
const withHost = (target: string, h: string): string => target.replace(/^(https?:\/\/)[^/]*/i, `$1${h}`);

describe('the path infergate authorises is the path real backends serve', () => {
  const backends = new Map<BackendName, Backend>();
  const direct = new Map<BackendName, Outcome[]>();
  const viaEnvoy = new Map<BackendName, Outcome[]>();
  const decisions = new Map<string, Decision>();
  const envoys: EnvoyHandle[] = [];
  let authz: AuthzProcess | undefined;
  let dir: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'infergate-backend-paths-'));
    const manifest = join(dir, 'manifest.yaml');
    const decisionLog = join(dir, 'decisions.log');
    writeFileSync(manifest, MANIFEST);
    const pki = makePki(join(dir, 'pki'), { client: CLIENT });
    const tlsClient: TlsClient = { ca: readFileSync(pki.caCert), cert: readFileSync(pki.client('client').cert), key: readFileSync(pki.client('client').key) };
    // Registered as each one comes up, so afterAll stops whatever started even if another failed.
    const started = await Promise.allSettled([
      ...NAMES.map((n) => startBackend(n).then((b) => void backends.set(n, b))),
      startAuthzProcess(['--bundle', requireBundle(), '--manifest', manifest, '--decision-log', decisionLog, '--log-level', 'info']).then((a) => void (authz = a)),
    ]);
    const failed = started.filter((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failed.length > 0) throw new Error(failed.map((f) => String(f.reason)).join('\n'));
    const authzProcess = authz!;

    // One Envoy per backend, all sharing the authz server; the unique Host of
    // each request ties the decision log line to the backend's own log.
    const fronted = await Promise.all(
      NAMES.map(async (n) => {
        const envoy = await startEnvoy(
          renderBootstrap({ listenerPort: 0, tls: pki, extAuthz: { host: '127.0.0.1', port: authzProcess.port }, upstream: { host: '127.0.0.1', port: backends.get(n)!.port } }),
          { concurrency: 1 },
        );
        envoys.push(envoy);
        return [n, envoy.listenerPort('ingress')] as const;
      }),
    );

    const jobs: Job[] = NAMES.flatMap((n) => TARGETS.map((t, i) => ({ n, t: t.target, i })));
    // Load from the rest of the suite can stall a reply on this 2-core machine; a row is asked
    // again (up to three times in all) when it timed out, or, through Envoy, when the 403 has no
    // infergate reason (Envoy failing closed because the check itself timed out).
    const slow = (r: RawReply): boolean => r.error === 'timed out';
    const direct1 = async ({ n, t }: Job): Promise<RawReply> => rawGet(backends.get(n)!.port, t, 'backend.paths.test', 5000);
    const directReplies = await pool(jobs, 24, (job) => retry(() => direct1(job), slow));
    const ports = new Map(fronted);
    // Each Envoy's first request opens its gRPC connection to the authz server; do that before the load.
    await Promise.all(NAMES.map((n) => rawGetTls(ports.get(n)!, tlsClient, '/', 'warm-up.paths.test')));
    const envoy1 = ({ n, t, i }: Job): Promise<RawReply> => rawGetTls(ports.get(n)!, tlsClient, withHost(t, host(i, n)), host(i, n), 5000);
    const failedClosed = (r: RawReply): boolean => slow(r) || (r.status === 403 && r.headers['x-infergate-reason'] === undefined);
    const envoyReplies = await pool(jobs, 12, (job) => retry(() => envoy1(job), failedClosed));
    jobs.forEach(({ n }, k) => {
      const b = backends.get(n)!;
      if (!direct.has(n)) direct.set(n, []);
      if (!viaEnvoy.has(n)) viaEnvoy.set(n, []);
      direct.get(n)!.push(outcome(b, directReplies[k]!));
      viaEnvoy.get(n)!.push(outcome(b, envoyReplies[k]!));
    });

    // The decision log is written asynchronously: wait until every request that got past the path check is in it.
    const decided = (r: RawReply): boolean => r.status === 200 || r.headers['x-infergate-reason'] === 'denied_by_rule';
    const expected = jobs.filter((_, k) => decided(envoyReplies[k]!)).map(({ n, i }) => host(i, n));
    const deadline = Date.now() + 5000;
    for (;;) {
      decisions.clear();
      for (const line of readFileSync(decisionLog, 'utf8').split('\n')) {
        if (!line) continue;
        const d = JSON.parse(line) as Decision;
        if (d.host !== null) decisions.set(d.host, d);
      }
      if (expected.every((h) => decisions.has(h)) || Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 50));
    }
  }, 120_000);

  afterAll(async () => {
    if (direct.size > 0) {
      const v = (t: string): string | null => {
        const a = infergate(t);
        return 'path' in a ? a.path : null;
      };
      // The evidence behind docs/ext-authz.md's table, kept as a file rather than flooding the test output.
      const out = `${ROOT}build/evidence/backend-paths.md`;
      mkdirSync(dirname(out), { recursive: true });
      writeFileSync(out, evidenceTable({ backends: NAMES.map((n) => backends.get(n)!), targets: TARGETS, infergate: v, direct, viaEnvoy, decision: (i, n) => decisions.get(host(i, n)) }) + '\n');
      console.log(`backend-paths: what every backend did with every target is in ${out}`);
    }
    await Promise.all(envoys.map((e) => e.stop()));
    await authz?.stop();
    await Promise.all([...backends.values()].map((b) => b.stop()));
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  describe('sent straight to the backend', () => {
    it.each(NAMES)('%s refuses, redirects, or serves exactly the path infergate matches rules on, for every target infergate accepts', (n) => {
      const b = backends.get(n)!;
      const violations = TARGETS.map((t, i) => directViolation(b, t.target, direct.get(n)![i]!, infergate(t.target))).filter((v) => v !== null);
      expect(violations).toEqual([]);
    });

    it.each(SERVLETS)(
      'with requestPaths.allowSemicolons: true, %s serves a weights path that infergate authorised as something else (the documented trade-off)',
      (n) => {
        const target = '/v1/models/llama/weights;/shard-0';
        const authorised = infergate(target, { allowSemicolons: true });
        expect(authorised).toEqual({ path: target });
        expect(DENIED.test(target)).toBe(false);
        const o = direct.get(n)![TARGETS.findIndex((t) => t.target === target)]!;
        expect(o).toEqual({ status: 200, path: '/v1/models/llama/weights/shard-0' });
        expect(DENIED.test(o.path!)).toBe(true);
      },
    );

    it("Tomcat reads ..; as .. (so allowSemicolons would let /llama/..;/llama/weights past the deny rule)", () => {
      const target = '/v1/models/llama/..;/llama/weights/shard-0';
      const authorised = infergate(target, { allowSemicolons: true });
      expect(authorised).toEqual({ path: target });
      expect(DENIED.test(target)).toBe(false);
      const o = direct.get('tomcat')![TARGETS.findIndex((t) => t.target === target)]!;
      expect(o).toEqual({ status: 200, path: '/v1/models/llama/weights/shard-0' });
    });
  });

  describe('through Envoy (the project bootstrap) and infergate-authz', () => {
    it.each(NAMES)('%s: every request it served was authorised on the very path it routed on', (n) => {
      const b = backends.get(n)!;
      const violations: string[] = [];
      viaEnvoy.get(n)!.forEach((o, i) => {
        if (o.status !== 200) return;
        const d = decisions.get(host(i, n));
        const target = JSON.stringify(TARGETS[i]!.target);
        if (d === undefined) violations.push(`${target}: served ${JSON.stringify(o.path)} with no decision logged`);
        else if (d.result !== 'allow' || d.path !== served(b, o.path!)) {
          violations.push(`${target}: infergate ${d.result} on ${JSON.stringify(d.path)} (${d.reason}), ${n} routed on ${JSON.stringify(o.path)}`);
        }
      });
      expect(violations).toEqual([]);
    });

    it.each(NAMES)('%s: every request got an answer, and every 403 infergate\'s (no check or reply timed out)', (n) => {
      const unanswered = viaEnvoy.get(n)!.flatMap((o, i) => ((o.status === 403 && o.reason === undefined) || o.error === 'timed out' ? [TARGETS[i]!.target] : []));
      expect(unanswered).toEqual([]);
    });

    it.each(NAMES)('%s is never reached by a request infergate denied, and never serves a path the deny rule covers', (n) => {
      const b = backends.get(n)!;
      const reached = new Set(b.seen().map((s) => s.host.toLowerCase()));
      const outcomes = viaEnvoy.get(n)!;
      const deniedButReached = outcomes.flatMap((o, i) => (o.status === 403 && o.reason !== undefined && reached.has(host(i, n)) ? [TARGETS[i]!.target] : []));
      expect(deniedButReached).toEqual([]);
      const servedWeights = b.seen().filter((s) => /^t\d+\./.test(s.host) && DENIED.test(served(b, s.path)));
      expect(servedWeights).toEqual([]);
      // The deny rule did fire (so the checks above are not vacuous).
      expect(outcomes.filter((o) => o.reason === 'denied_by_rule').length).toBeGreaterThan(0);
    });
  });
});
