import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Agent } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { wasmHttpFilter } from '../../envoy/bootstrap.js';
import type { CheckResponse } from '../../ext-authz/src/check-response.js';
import { builtFilter } from '../filters/built.js';
import { authzClient, httpCheck, type AuthzClient } from '../helpers/authz-client.js';
import { startAuthzProcess, type AuthzProcess } from '../helpers/authz-process.js';
import { budget } from '../helpers/budget.js';
import { startE2eStack, type E2eStack } from '../helpers/e2e-stack.js';
import { startLoad, type Sent } from '../helpers/load.js';
import { mtlsRequest, type ClientCert } from '../helpers/mtls-client.js';
import { requireBundle } from '../helpers/paths.js';
import { envoyMemory, envoyStats, sampleValue, scrapeAuthz, type Sample } from '../helpers/scrape.js';

// Thousands of client certificates would take minutes to make with openssl, so
// the two floods reach the two tables another way: (i) the decision cache gets
// distinct SPIFFE principals as Check calls sent straight to the real server
// process (exactly what Envoy would send for each), and (ii) the filter's caller
// table keys on a request header instead of the peer certificate, so one
// certificate can present any number of identities.

const PREDICT = '/v1/models/flood:predict';
const FLOOD_ID = (n: number) => `spiffe://cluster.local/ns/flood/sa/f-${n}`;
const MANIFEST = `trustDomains: [cluster.local]
rules:
  - name: flood-predicts
    callers: ["spiffe://cluster.local/ns/flood/*"]
    methods: [POST]
    paths: ["/v1/models/*:predict"]
`;
const MB = 1024 * 1024;

describe('a flood of distinct identities: the decision cache stays within --cache-size (real server process)', () => {
  const CACHE_SIZE = 500;
  const FLOOD = 3000;
  let dir: string;
  let authz: AuthzProcess;
  let client: AuthzClient;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'infergate-flood-cache-'));
    writeFileSync(join(dir, 'manifest.yaml'), MANIFEST);
    authz = await startAuthzProcess(['--bundle', requireBundle(), '--manifest', join(dir, 'manifest.yaml'), '--cache-size', String(CACHE_SIZE), '--decision-log', 'off']);
    client = authzClient(`127.0.0.1:${authz.port}`);
  });

  afterAll(async () => {
    client?.close();
    await authz?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it(`never holds more than ${CACHE_SIZE} entries for ${FLOOD} principals, evicts the oldest, and keeps deciding right`, async () => {
    const check = (who: string): Promise<CheckResponse> => client.check(httpCheck(who, 'POST', PREDICT));
    const metrics = (): Promise<Sample[]> => scrapeAuthz(authz.metricsPort);
    const rss = (m: Sample[]) => sampleValue(m, 'infergate_process_resident_memory_bytes');
    // Warm up (JIT, wasm, gRPC buffers) before the baseline.
    for (let i = 0; i < 200; i++) await check('spiffe://cluster.local/ns/warm/sa/w');
    const baseline = rss(await metrics());

    // Scrape throughout the flood, not only after it.
    let flooding = true;
    const scrapes: Array<{ entries: number; rss: number }> = [];
    const scraper = (async () => {
      while (flooding) {
        const m = await metrics();
        scrapes.push({ entries: sampleValue(m, 'infergate_decision_cache_entries'), rss: rss(m) });
        await new Promise((r) => setTimeout(r, 25));
      }
    })();
    const t0 = performance.now();
    const statuses = new Map<number, number>();
    for (let b = 0; b < FLOOD; b += 100) {
      const replies = await Promise.all(Array.from({ length: 100 }, (_, i) => check(FLOOD_ID(b + i))));
      for (const r of replies) statuses.set(r.status.code, (statuses.get(r.status.code) ?? 0) + 1);
    }
    const took = performance.now() - t0;
    flooding = false;
    await scraper;
    const after = await metrics();
    scrapes.push({ entries: sampleValue(after, 'infergate_decision_cache_entries'), rss: rss(after) });

    const maxEntries = Math.max(...scrapes.map((s) => s.entries));
    const maxRss = Math.max(...scrapes.map((s) => s.rss));
    console.log(`flood/cache: ${FLOOD} principals in ${took.toFixed(0)} ms; ${scrapes.length} scrapes, max entries ${maxEntries}; RSS ${(baseline / MB).toFixed(0)} MB before, max ${(maxRss / MB).toFixed(0)} MB`);
    // Every one of them decided (allowed by the prefix rule), none refused for being one too many.
    expect(Object.fromEntries(statuses)).toEqual({ 0: FLOOD });
    // Bounded at every scrape, and full at the end: the bound was reached, not merely not exceeded.
    expect(scrapes.length).toBeGreaterThan(3);
    expect(maxEntries).toBeLessThanOrEqual(CACHE_SIZE);
    expect(sampleValue(after, 'infergate_decision_cache_entries')).toBe(CACHE_SIZE);
    // RSS is a loose guard against gross growth only: V8 sizes its heap to the allocation rate,
    // so a few thousand small entries are within its noise; the entries gauge is the bound.
    expect(maxRss - baseline).toBeLessThan(256 * MB);

    // LRU: the most recent principal is still cached, the first one was evicted and is decided afresh.
    const hitsAndMisses = (m: Sample[]) => [sampleValue(m, 'infergate_decision_cache_hits_total'), sampleValue(m, 'infergate_decision_cache_misses_total')] as const;
    const [h0, m0] = hitsAndMisses(after);
    expect(m0).toBeGreaterThanOrEqual(FLOOD);
    expect((await check(FLOOD_ID(FLOOD - 1))).status.code).toBe(0);
    const [h1, m1] = hitsAndMisses(await metrics());
    expect([h1 - h0, m1 - m0]).toEqual([1, 0]);
    expect((await check(FLOOD_ID(0))).status.code).toBe(0);
    const [h2, m2] = hitsAndMisses(await metrics());
    expect([h2 - h0, m2 - m0]).toEqual([1, 1]);
    // And a caller outside the rule is still denied after the flood.
    expect((await check('spiffe://cluster.local/ns/web/sa/frontend')).status.code).toBe(7);
  });
});

describe('a flood of distinct identities: the guard filter\'s caller table stays within maxCallers (real Envoy, two workers)', () => {
  const MAX_CALLERS = 64;
  const FLOOD = 2000;
  const KNOWN = 'spiffe://cluster.local/ns/flood/sa/known';
  const KNOWN_LIMIT = { perSecond: 20, burst: 40 };
  // Callers that are not busy, so their buckets are full again (as good as new) soon after each
  // request. Two send one request every PAUSE_MS, well under their limits (full again 50-100 ms
  // after each): PACED is named by an exact rule (a bucket of its own), PARTNER only by a prefix
  // rule (a shared slot, which idleSeconds keeps for it between requests). QUIET, also an exact
  // rule, is silent for longer than idleSeconds and then calls mid-flood: only its reserved
  // bucket keeps it out of the overflow.
  const PACED = 'spiffe://cluster.local/ns/flood/sa/known-paced';
  const QUIET = 'spiffe://cluster.local/ns/flood/sa/known-quiet';
  const PARTNER = 'spiffe://cluster.local/ns/partner/sa/paced';
  const PARTNER_LIMIT = { perSecond: 10, burst: 20 };
  const PAUSE_MS = 200;
  const IDLE_SECONDS = 1; // the default, spelled out because QUIET's silence must exceed it
  const DEFAULT_LIMIT = { perSecond: 1, burst: 1 };
  // Keyed on a header only this test sets (ext_authz leaves it alone), standing in for the
  // verified identity: see the comment at the top.
  const HEADER = 'x-flood-identity';
  const GUARD = {
    rateLimit: {
      identity: `header:${HEADER}`, default: DEFAULT_LIMIT, maxCallers: MAX_CALLERS, idleSeconds: IDLE_SECONDS,
      callers: [
        { match: KNOWN, ...KNOWN_LIMIT }, { match: PACED, ...KNOWN_LIMIT }, { match: QUIET, ...KNOWN_LIMIT },
        { match: 'spiffe://cluster.local/ns/partner/*', ...PARTNER_LIMIT },
      ],
    },
  };
  let stack: E2eStack;

  interface Answer { readonly sentAt: number; readonly status: number; readonly limit: unknown }
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

  function ask(cert: ClientCert, who: string, agent?: Agent): Promise<Answer> {
    const sentAt = performance.now();
    return mtlsRequest(stack.port, stack.pki.caCert, cert, { method: 'POST', path: PREDICT, body: '{}', headers: { [HEADER]: who }, agent })
      .then((r) => ({ sentAt, status: r.status, limit: r.headers['x-ratelimit-limit'] }));
  }

  /** One caller sending a request, then pausing PAUSE_MS, until stopped: never busy. */
  function paced(cert: ClientCert, who: string) {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const answers: Answer[] = [];
    let stopping = false;
    const loop = (async () => {
      while (!stopping) {
        answers.push(await ask(cert, who, agent));
        await sleep(PAUSE_MS);
      }
    })();
    return { answers, stop: async () => { stopping = true; await loop; agent.destroy(); return answers; } };
  }

  beforeAll(async () => {
    stack = await startE2eStack({
      name: 'faults-flood', manifest: MANIFEST, clients: { flooder: 'spiffe://cluster.local/ns/flood/sa/flooder' },
      httpFilters: [wasmHttpFilter('guard', builtFilter('guard'), GUARD)],
    });
  });

  afterAll(async () => {
    await stack?.stop();
  });

  it(`admits at most maxCallers (${MAX_CALLERS}) new callers per refill period plus the shared overflow bucket; known callers keep their own budgets throughout, busy or not`, async () => {
    const { pki, envoy } = stack;
    const cert = { name: 'flooder', cert: pki.client('flooder') };
    const stats0 = await envoyStats(envoy.adminPort);
    const mem0 = await envoyMemory(envoy.adminPort);

    // QUIET's first request; its second comes mid-flood, after more than idleSeconds of silence.
    const quietFirst = await ask(cert.cert, QUIET);

    // The known caller is busy before, during and after the flood (it never refills to full,
    // so its slot is never idle and cannot be reclaimed).
    const known = startLoad({
      port: stack.port, ca: pki.caCert, callers: [cert], connections: 4, path: PREDICT, headers: () => ({ [HEADER]: KNOWN }),
      warmupPath: '/v1/models/flood:warmup',
    });
    await known.ready;
    while (!known.sent.some((s) => s.status === 200)) await sleep(10);
    const pacedCaller = paced(cert.cert, PACED);
    const partner = paced(cert.cert, PARTNER);
    while (pacedCaller.answers.length === 0 || partner.answers.length === 0) await sleep(10);
    await sleep(quietFirst.sentAt + IDLE_SECONDS * 1000 + 100 - performance.now());

    // Each flood identity sends one request; its bucket then takes 1 s (1 token at 1/s) to be
    // full again, and only then may its slot go to another identity.
    const flood = startLoad({
      port: stack.port, ca: pki.caCert, callers: [cert], connections: 32, path: PREDICT, maxRequests: FLOOD,
      headers: (seq) => ({ [HEADER]: FLOOD_ID(seq) }), warmupPath: '/v1/models/flood:warmup',
    });
    await flood.ready;
    // By a few hundred flood identities every shared slot is taken (each held 1 s) and the overflow drained.
    while (flood.sent.length < 400) await sleep(5);
    const quietSecond = await ask(cert.cert, QUIET);
    const flooded: Sent[] = await flood.done();
    // The known callers go on a little after the flood.
    await sleep(500);
    const knownSent = await known.stop();
    const [pacedAnswers, partnerAnswers] = await Promise.all([pacedCaller.stop(), partner.stop()]);
    const quietAnswers = [quietFirst, quietSecond];
    const mem1 = await envoyMemory(envoy.adminPort);
    const stats1 = await envoyStats(envoy.adminPort);

    expect(flooded.filter((s) => s.error !== null || (s.status !== 200 && s.status !== 429))).toEqual([]);
    const floodStart = Math.min(...flooded.map((s) => s.sentAt));
    const floodLastSent = Math.max(...flooded.map((s) => s.sentAt));
    const floodEnd = Math.max(...flooded.map((s) => s.doneAt));
    const seconds = (floodEnd - floodStart) / 1000;
    const admitted = flooded.filter((s) => s.status === 200).length;
    // A slot admits a new identity at most once per refill period (1 s, also idleSeconds), and the
    // identities that find no slot share one overflow bucket under the default limit.
    const bound = MAX_CALLERS * (1 + Math.floor(seconds / 1)) + DEFAULT_LIMIT.burst + Math.ceil(DEFAULT_LIMIT.perSecond * seconds);
    const kb = budget(knownSent, KNOWN_LIMIT.burst, KNOWN_LIMIT.perSecond);
    const grew = (mem1.allocated - mem0.allocated) / MB;
    const ok = (a: ReadonlyArray<{ status: number }>) => a.filter((x) => x.status === 200).length;
    const notBusy = { paced: pacedAnswers, partner: partnerAnswers, quiet: quietAnswers };
    console.log(`flood/filter: ${FLOOD} identities in ${seconds.toFixed(2)} s, ${admitted} admitted (bound ${bound}); known caller ${kb.admitted} admitted of ${knownSent.length}, expected ${kb.expected.toFixed(1)} +${kb.over.toFixed(2)}/-${kb.under.toFixed(2)}; not busy: ${Object.entries(notBusy).map(([k, a]) => `${k} ${ok(a)}/${a.length}`).join(', ')} admitted; Envoy allocated ${(mem0.allocated / MB).toFixed(1)} -> ${(mem1.allocated / MB).toFixed(1)} MB`);
    expect(admitted).toBeLessThanOrEqual(bound);
    // Every rejected one was told so by the overflow bucket's default limit.
    for (const s of flooded.filter((x) => x.status === 429)) expect(s.headers['x-ratelimit-limit']).toBe(String(DEFAULT_LIMIT.burst));

    // The known caller's limit held during and after the flood: its own bucket (its burst on every
    // reply, never the overflow's), and the admitted count that bucket allows over the whole run.
    expect(knownSent.filter((s) => s.error !== null)).toEqual([]);
    expect(new Set(knownSent.map((s) => s.headers['x-ratelimit-limit']))).toEqual(new Set([String(KNOWN_LIMIT.burst)]));
    expect(kb.admitted).toBeLessThanOrEqual(Math.floor(kb.expected + kb.over));
    expect(kb.admitted).toBeGreaterThan(kb.expected - kb.under);

    // The callers that were not busy were never charged to the overflow bucket: every answer came
    // from their own limit (never a 429 carrying the overflow's x-ratelimit-limit: 1), including
    // the ones they sent while the flood ran.
    // (The flood lasts 0.8-3 s on this machine, so a paced caller sends at least two requests in it.)
    const during = (a: readonly Answer[]) => a.filter((x) => x.sentAt >= floodStart && x.sentAt <= floodLastSent).length;
    expect(during(pacedAnswers)).toBeGreaterThanOrEqual(2);
    expect(during(partnerAnswers)).toBeGreaterThanOrEqual(2);
    expect(during([quietSecond])).toBe(1);
    expect(quietSecond.sentAt - quietFirst.sentAt).toBeGreaterThan(IDLE_SECONDS * 1000);
    for (const [answers, limit] of [[pacedAnswers, KNOWN_LIMIT], [partnerAnswers, PARTNER_LIMIT], [quietAnswers, KNOWN_LIMIT]] as const) {
      expect(answers.filter((a) => a.status !== 200 || a.limit !== String(limit.burst))).toEqual([]);
    }

    // Envoy's side: no shared-data errors, the rejections counted, and no memory growth to speak of
    // (a table that grew with identities would hold thousands of keys; this one holds 64 slots, the
    // overflow and one bucket per exact rule).
    const stat = (m: Map<string, number>, k: string) => m.get(`wasmcustom.infergate.rate_limit.${k}`) ?? 0;
    const rejected = (a: ReadonlyArray<{ status: number }>) => a.length - ok(a);
    expect(stat(stats1, 'errors')).toBe(0);
    expect(stat(stats1, 'rejected') - stat(stats0, 'rejected')).toBe(rejected(flooded) + rejected(knownSent) + Object.values(notBusy).map(rejected).reduce((x, y) => x + y));
    expect(grew).toBeLessThan(32);
  });
});
