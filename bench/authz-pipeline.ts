/**
 * Where a Check's time goes inside infergate-authz, step by step, without
 * gRPC or the network: the pure pipeline (policy input, cache, wasm policy,
 * CheckResponse), the protobuf encoding grpc-js does for it, and the decision
 * log line. Baseline, measured in the same run: encoding the bare "allow"
 * response the allow-all server of authz-bench.ts sends.
 *
 * Method: each step runs in 40 batches of a fixed number of calls after a
 * warm-up; a batch's mean is one sample; the table shows the median and the
 * 99th percentile (the 40 samples' worst but one) of those means, in µs.
 *
 * For comparison it also runs `opa bench` on the same policy, data and input:
 * OPA's Go evaluator (topdown), the engine OPA-Envoy evaluates policies with.
 * Its median and p99 are OPA's own per-evaluation histogram.
 *
 *   node dist/bench/authz-pipeline.js
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { Authorizer, type Verdict } from '../ext-authz/src/authorizer.js';
import { toCheckResponse } from '../ext-authz/src/check-response.js';
import { DecisionCache } from '../ext-authz/src/decision-cache.js';
import { EncodedAllows } from '../ext-authz/src/encoded-allows.js';
import { checkResponseEncoder } from '../ext-authz/src/check-response-encode.js';
import { logDecision } from '../ext-authz/src/decision-log.js';
import type { PolicyDecision } from '../ext-authz/src/decision.js';
import { loadManifestFile } from '../ext-authz/src/manifest.js';
import { readBundle } from '../ext-authz/src/policy-bundle.js';
import { PolicyEngine } from '../ext-authz/src/policy-engine.js';
import { STRICT_PATHS } from '../ext-authz/src/path.js';
import { requestContext } from '../ext-authz/src/request-context.js';
import { toPolicyInput } from '../ext-authz/src/policy-input.js';
import { authorizationService } from '../ext-authz/src/protos.js';
import { REPO_ROOT as ROOT } from '../ext-authz/src/repo-root.js';

const BATCHES = 40;

function request(path: string) {
  return {
    attributes: {
      source: { principal: 'spiffe://cluster.local/ns/gateway/sa/api-gateway' },
      request: { http: { method: 'POST', path, host: 'model-serving.ml.svc.cluster.local', headers: {
        ':path': path, 'content-type': 'application/json', 'x-request-id': '6c9d2a1e-4b1f-4f8e-9a53-2f0c1d7e8b90',
        traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
      } } },
    },
  };
}

function measure(perBatch: number, fn: (i: number) => unknown): { median: number; p99: number } {
  let sink: unknown;
  for (let i = 0; i < perBatch * 2; i++) sink = fn(i);
  const samples: number[] = [];
  let n = 0;
  for (let b = 0; b < BATCHES; b++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < perBatch; i++) sink = fn(n++);
    samples.push(Number(process.hrtime.bigint() - t0) / perBatch / 1000);
  }
  if (sink === Symbol.for('never')) console.log(sink);
  samples.sort((a, b) => a - b);
  return { median: samples[Math.floor(samples.length / 2)]!, p99: samples[Math.ceil(samples.length * 0.99) - 1]! };
}

async function main(): Promise<void> {
  const bundle = await readBundle(`${ROOT}build/policy/bundle.tar.gz`);
  const engine = await PolicyEngine.create(bundle, { access_manifest: loadManifestFile(`${ROOT}test/fixtures/manifests/example.yaml`).data });
  const policy = () => ({ engine, revision: 'abcdef123456', paths: STRICT_PATHS, endUsers: null });
  const opts = { trustXfcc: false, inputHeaders: [] };
  const hits = new Authorizer(policy, new DecisionCache<PolicyDecision>({ max: 10_000, ttlMs: 600_000, jitter: 0.1 }), opts);
  const misses = new Authorizer(policy, new DecisionCache<PolicyDecision>({ max: 0, ttlMs: 1, jitter: 0 }), opts);
  const svc = authorizationService().Check!;
  const encode = svc.responseSerialize;
  const decode = svc.requestDeserialize;
  const allowAll = { status: { code: 0, message: '' }, ok_response: {} };
  const same = request('/v1/models/bert:predict');
  const distinct = Array.from({ length: 1024 }, (_, i) => request(`/v1/models/m${i}:predict`));
  const escaped = request('/v1/models/b%C3%A9rt%2Dv2%20large:predict');
  // No end-user tokens here, so checks are synchronous.
  hits.check(same);
  const hitVerdict = hits.check(same) as Verdict;
  const allowResponse = toCheckResponse(hitVerdict, false);
  const allows = new EncodedAllows(encode, false);
  const handEncode = checkResponseEncoder(encode);
  if (!hitVerdict.cacheHit || allows.forHit(hitVerdict) === null) throw new Error('the hit verdict is no cache hit that allows');
  const denyResponse = toCheckResponse(misses.check(request('/admin/x')) as Verdict, false);
  const wire = svc.requestSerialize(same);
  const ctx = requestContext(same.attributes.request.http);
  const devNull = new Writable({ write: (_c, _e, cb) => cb() });
  const declog = pino({ base: null, timestamp: pino.stdTimeFunctions.isoTime }, devNull);

  const rows: Array<[string, { median: number; p99: number }]> = [
    ['baseline: encode the allow-all response', measure(20_000, () => encode(allowAll))],
    ['decode the CheckRequest (grpc-js, protobufjs)', measure(20_000, () => decode(wire))],
    ['policy input: identity + route, clean path', measure(20_000, () => toPolicyInput(same, opts))],
    ['policy input: path with percent-escapes', measure(20_000, () => toPolicyInput(escaped, opts))],
    ['authorize, cache hit', measure(20_000, () => hits.check(same))],
    ['authorize, cache miss (wasm policy)', measure(1_000, (i) => misses.check(distinct[i % 1024]!))],
    ['verdict → CheckResponse object', measure(20_000, () => toCheckResponse(hitVerdict, false))],
    ['encode the allow CheckResponse', measure(20_000, () => encode(allowResponse))],
    ['allow on a cache hit: bytes encoded once per cache entry', measure(20_000, () => allows.forHit(hitVerdict))],
    ['encode a deny CheckResponse', measure(20_000, () => encode(denyResponse))],
    ['encode the allow CheckResponse, hand-written encoder', measure(20_000, () => handEncode(allowResponse))],
    ['encode a deny CheckResponse, hand-written encoder', measure(20_000, () => handEncode(denyResponse))],
    ['request id + trace context for the log', measure(20_000, () => requestContext(same.attributes.request.http))],
    ['decision log line (pino, to a null stream)', measure(20_000, () => logDecision(declog, hitVerdict, false, 12, ctx))],
  ];
  const topdown = opaTopdown(loadManifestFile(`${ROOT}test/fixtures/manifests/example.yaml`).data, toPolicyInput(distinct[17]!, opts));
  if (topdown) rows.push(['OPA topdown (Go; OPA-Envoy\'s engine), same policy + input', topdown]);
  const base = rows[0]![1].median;
  const w = Math.max(...rows.map(([n]) => n.length));
  console.log(`\ninfergate-authz pipeline, in-process (Node ${process.version}; ${BATCHES} batches; µs per call)\n`);
  console.log(`${'step'.padEnd(w)}  median µs   p99 µs  vs baseline`);
  console.log(`${'-'.repeat(w)}  ---------  -------  -----------`);
  for (const [name, r] of rows) {
    console.log(`${name.padEnd(w)}  ${r.median.toFixed(2).padStart(9)}  ${r.p99.toFixed(2).padStart(7)}  ${(r.median / base).toFixed(1).padStart(10)}x`);
  }
  console.log('\nA cache hit end to end in the handler = decode + authorize (hit) + the allow (bytes encoded once per cache entry) (+ log line when on).');
}

/** `opa bench` of the default policy; null (with a note) when the pinned opa is not installed. */
function opaTopdown(manifest: unknown, input: unknown): { median: number; p99: number } | null {
  const opa = `${ROOT}.tools/bin/opa`;
  if (!existsSync(opa)) {
    console.error('opa not found in .tools/bin: run `make setup` to include the OPA topdown comparison');
    return null;
  }
  const dir = mkdtempSync(join(tmpdir(), 'infergate-opa-bench-'));
  try {
    writeFileSync(join(dir, 'data.json'), JSON.stringify({ access_manifest: manifest }));
    writeFileSync(join(dir, 'input.json'), JSON.stringify(input));
    const out = execFileSync(
      opa,
      ['bench', '--format', 'json', '--data', `${ROOT}ext-authz/policy/authz.rego`, '--data', join(dir, 'data.json'), '--input', join(dir, 'input.json'), 'data.infergate.authz.decision'],
      { encoding: 'utf8' },
    );
    const extra = (JSON.parse(out) as { Extra: Record<string, number> }).Extra;
    return { median: extra['histogram_timer_rego_query_eval_ns_median']! / 1000, p99: extra['histogram_timer_rego_query_eval_ns_99%']! / 1000 };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

void main();
