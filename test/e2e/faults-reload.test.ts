import { createHash } from 'node:crypto';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startE2eStack, type E2eStack } from '../helpers/e2e-stack.js';
import { startLoad, until, type Sent } from '../helpers/load.js';
import { requireBundle } from '../helpers/paths.js';
import { sampleValue, scrapeAuthz, type Sample } from '../helpers/scrape.js';

/** How much later than another worker's first decision by a version a worker may still decide by the one before. */
const ACROSS_WORKERS_MS = 100;

const TD = 'spiffe://cluster.local/ns/reload/sa/';
const IDS = { a: `${TD}a`, b: `${TD}b`, c: `${TD}c` };
type Caller = keyof typeof IDS;
const CALLERS = Object.keys(IDS) as Caller[];
const PREDICT = '/v1/models/reload:predict';

/**
 * Valid version k: one caller is allowed by rule v<k>-allow, the other is
 * denied by rule v<k>-deny, and which is which alternates; c matches no rule.
 * So every decision names the version that made it, and a decision made by
 * one version's rules under another's revision cannot pass for a right one.
 */
const allowedIn = (k: number): Caller => (k % 2 === 0 ? 'a' : 'b');
const deniedIn = (k: number): Caller => (k % 2 === 0 ? 'b' : 'a');
function manifest(k: number | string): string {
  const name = typeof k === 'number' ? `v${k}` : k;
  const n = typeof k === 'number' ? k : 0;
  return `trustDomains: [cluster.local]
rules:
  - name: ${name}-deny
    action: deny
    callers: [${IDS[deniedIn(n)]}]
    paths: ["/v1/models/*:predict"]
  - name: ${name}-allow
    callers: [${IDS[allowedIn(n)]}]
    methods: [POST]
    paths: ["/v1/models/*:predict"]
`;
}

interface Decision { result: 'allow' | 'deny'; rule: string | null; reason: string }
function decide(k: number, who: Caller): Decision {
  if (who === allowedIn(k)) return { result: 'allow', rule: `v${k}-allow`, reason: 'allowed' };
  if (who === deniedIn(k)) return { result: 'deny', rule: `v${k}-deny`, reason: 'denied_by_rule' };
  return { result: 'deny', rule: null, reason: 'no_matching_rule' };
}

/**
 * Broken versions, each a near miss of a valid one whose rule names (bad<j>-…)
 * no valid version uses: if any of it were ever half applied, those names
 * would show up in decisions.
 */
const INVALID: Array<[string, (j: number) => string, string]> = [
  ['YAML syntax error', (j) => manifest(`bad${j}`).replace('paths: ["/v1/models/*:predict"]\n  - name', 'paths: ["/v1/models/*:predict"\n  - name'), 'invalid YAML'],
  ['unknown rule key', (j) => manifest(`bad${j}`).replace('    methods: [POST]', '    methods: [POST]\n    pathz: ["/admin/**"]'), 'unknown key "pathz"'],
  ['bad SPIFFE ID', (j) => manifest(`bad${j}`).replace(`callers: [${IDS.b}]`, 'callers: [spiffe://cluster.local/ns/reload/../sa/b]'), 'bad SPIFFE ID'],
  ['bad trust domain', (j) => manifest(`bad${j}`).replace('trustDomains: [cluster.local]', 'trustDomains: [Cluster.Local]'), 'bad trust domain'],
  ['unknown top-level key', (j) => `${manifest(`bad${j}`)}quarantined: [${IDS.c}]\n`, 'unknown key "quarantined"'],
  ['duplicate rule name', (j) => manifest(`bad${j}`).replace(`bad${j}-allow`, `bad${j}-deny`), 'duplicate rule name'],
  ['empty file', () => '', 'manifest is empty'],
  ['wrong type', () => 'trustDomains: [cluster.local]\nrules: everyone\n', 'expected array, got string'],
  ['lower-case method', (j) => manifest(`bad${j}`).replace('methods: [POST]', 'methods: [post]'), 'bad method "post"'],
];

// 60 writes: 35 valid (v1…v35) and 25 invalid, the last one invalid, so the
// last valid version must stay in force at the end.
type Write = { valid: true; k: number } | { valid: false; j: number; what: string; text: string; why: string };
const WRITES: Write[] = [];
for (let i = 0, k = 0, j = 0; i < 60; i++) {
  if (i % 5 === 1 || i % 5 === 3 || i === 59) {
    const [what, make, why] = INVALID[j % INVALID.length]!;
    WRITES.push({ valid: false, j, what, text: make(j), why });
    j++;
  } else {
    WRITES.push({ valid: true, k: ++k });
  }
}
const INVALID_WRITES = WRITES.filter((w): w is Extract<Write, { valid: false }> => !w.valid);
const INVALID_COUNT = INVALID_WRITES.length;
const VALID_COUNT = WRITES.length - INVALID_COUNT;
const LAST_VALID = Math.max(...WRITES.map((w) => (w.valid ? w.k : 0)));

describe('the manifest rewritten 60 times under load, valid and invalid versions mixed', () => {
  let stack: E2eStack;
  // The server's revision: first 12 hex of sha256(bundle bytes, "\0", manifest text) (ext-authz/src/policy-store.ts).
  const bundle = readFileSync(requireBundle());
  const revision = (text: string) => createHash('sha256').update(bundle).update('\0').update(text).digest('hex').slice(0, 12);
  const versionOf = new Map<string, number>();
  for (let k = 0; k <= LAST_VALID; k++) versionOf.set(revision(manifest(k)), k);

  beforeAll(async () => {
    stack = await startE2eStack({ name: 'faults-reload', manifest: manifest(0), clients: IDS });
  });

  afterAll(async () => {
    await stack?.stop();
  });

  it('decides every request by exactly one whole valid version, keeps the last valid one, and counts the rejected ones', async () => {
    const { pki, authz } = stack;
    const metrics = (): Promise<Sample[]> => scrapeAuthz(authz.metricsPort);
    const inForce = async (rev: string) => sampleValue(await metrics(), 'infergate_policy_revision_info', { revision: rev }) === 1;
    const rejections = () => authz.logs().split('\n').filter((l) => l.includes('policy reload rejected'))
      .map((l) => JSON.parse(l) as { source: string; error: string });
    expect(await inForce(revision(manifest(0)))).toBe(true);

    const load = startLoad({
      port: stack.port, ca: pki.caCert, callers: CALLERS.map((name) => ({ name, cert: pki.client(name) })), connections: 6, path: PREDICT,
    });
    await until('load on every connection', () => new Set(load.sent.filter((s) => s.doneAt !== 0).map((s) => s.conn)).size === 6, 15_000);

    const t0 = performance.now();
    for (const [i, w] of WRITES.entries()) {
      const before = rejections().length;
      // Written beside it and renamed over it, as an atomic editor save or a ConfigMap update would:
      // a reader never sees a torn file, so each invalid version is invalid for the reason intended.
      const tmp = `${stack.manifest}.${i}.tmp`;
      writeFileSync(tmp, w.valid ? manifest(w.k) : w.text);
      renameSync(tmp, stack.manifest);
      // Wait until the server has acted on this write before the next, so every version is seen.
      if (w.valid) {
        await until(`v${w.k} in force`, () => inForce(revision(manifest(w.k))), 5000, 10);
      } else {
        await until(`write ${i} (${w.what}) rejected`, () => rejections().slice(before).some((r) => r.error.includes(w.why)), 5000, 10);
      }
    }
    const rewriting = performance.now() - t0;
    const sent = await load.stop();

    // After the last (invalid) write, the last valid version is in force, and /metrics says so
    // (read once the log, which arrives over a pipe, has caught up with the counter).
    let m: Sample[] = [];
    await until('the rejections logged and counted', async () => {
      m = await metrics();
      return sampleValue(m, 'infergate_policy_reloads_total', { result: 'error' }) === rejections().length;
    }, 5000, 10);
    expect(sampleValue(m, 'infergate_policy_revision_info', { revision: revision(manifest(LAST_VALID)) })).toBe(1);
    expect(m.filter((s) => s.name === 'infergate_policy_revision_info' && s.value === 1)).toHaveLength(1);
    expect(sampleValue(m, 'infergate_policy_last_reload_success')).toBe(0);
    // Each invalid version was rejected, for the reason it was made invalid for, in order, and
    // counted exactly once: the directory watch and the 1 s stat poll both see each write, and the
    // server judges a content it has already rejected only once.
    const rejected = rejections();
    expect(rejected.map((r) => r.source)).toEqual(INVALID_WRITES.map(() => 'manifest'));
    INVALID_WRITES.forEach((w, n) => expect(rejected[n]!.error, w.what).toContain(w.why));
    expect(sampleValue(m, 'infergate_policy_reload_errors_total', { source: 'manifest' })).toBe(rejected.length);
    expect(sampleValue(m, 'infergate_policy_reload_errors_total', { source: 'bundle' })).toBe(0);
    expect(sampleValue(m, 'infergate_policy_reloads_total', { result: 'error' })).toBe(rejected.length);
    expect(sampleValue(m, 'infergate_policy_reloads_total', { result: 'success' })).toBe(VALID_COUNT + 1); // + the initial load

    // Clients saw only the intended decisions: no 5xx, no connection errors, and each reply is what some valid version says.
    const expectReply = (s: Sent) => {
      expect(s.error).toBeNull();
      const who = s.caller as Caller;
      if (s.status === 200) {
        const rule = String((JSON.parse(s.body) as { headers: Record<string, string> }).headers['x-infergate-rule']);
        const k = Number(/^v(\d+)-allow$/.exec(rule)?.[1]);
        expect(allowedIn(k), `${rule} allowed ${who}`).toBe(who);
        return;
      }
      expect(s.status).toBe(403);
      const body = JSON.parse(s.body) as { code: string; rule: string | null };
      expect(s.headers['x-infergate-reason']).toBe(body.code);
      if (body.code === 'no_matching_rule') expect(who).toBe('c');
      else {
        expect(body.code).toBe('denied_by_rule');
        const k = Number(/^v(\d+)-deny$/.exec(String(body.rule))?.[1]);
        expect(deniedIn(k), `${body.rule} denied ${who}`).toBe(who);
      }
    };
    for (const s of sent) expectReply(s);

    // Every decision the server logged was made by one whole valid version: its revision maps
    // back to a manifest version, and the decision is exactly what that version says.
    const callerName = new Map(Object.entries(IDS).map(([k, v]) => [v, k as Caller]));
    const logged = async () => readFileSync(stack.decisionLog, 'utf8').trim().split('\n')
      .map((l) => JSON.parse(l) as { time: string; worker?: number; policy_revision: string; rule: string | null; result: string; reason: string; caller: string; path: string })
      .filter((l) => l.path === PREDICT);
    await until('every request in the decision log', async () => (await logged()).length >= sent.length, 5000);
    const lines = await logged();
    expect(lines).toHaveLength(sent.length);
    const versionsSeen: number[] = [];
    const decided: { at: number; worker: number; k: number }[] = [];
    for (const l of lines) {
      const k = versionOf.get(l.policy_revision);
      expect(k, `revision ${l.policy_revision} is no valid version`).toBeDefined();
      const who = callerName.get(l.caller)!;
      expect({ result: l.result, rule: l.rule, reason: l.reason }, `${l.caller} under v${k}`).toEqual(decide(k!, who));
      versionsSeen.push(k!);
      decided.push({ at: Date.parse(l.time), worker: l.worker ?? 0, k: k! });
    }
    // And in order: once a version was in force, no older one decided anything. Each worker's lines
    // are in its own order. Across workers (--workers: the primary writes the workers' batches as they
    // arrive) the order is by time, with a tolerance: a check reads the policy when it starts and is
    // logged when it ends, and a worker busy at the switch-over instant switches a little late (the
    // measured swap window). A worker left on an old version would exceed it.
    for (const w of new Set(decided.map((d) => d.worker))) {
      const ks = decided.filter((d) => d.worker === w).map((d) => d.k);
      expect(ks, `worker ${w}`).toEqual([...ks].sort((x, y) => x - y));
    }
    const byTime = [...decided].sort((a, b) => a.at - b.at);
    let newestBefore = 0;
    for (let i = 0, j = 0; i < byTime.length; i++) {
      // newestBefore: the newest version that decided anything more than the tolerance before byTime[i].
      for (; byTime[j]!.at < byTime[i]!.at - ACROSS_WORKERS_MS; j++) newestBefore = Math.max(newestBefore, byTime[j]!.k);
      expect(byTime[i]!.k, `decided at ${new Date(byTime[i]!.at).toISOString()} by v${byTime[i]!.k}, more than ${ACROSS_WORKERS_MS} ms after v${newestBefore} was in force`).toBeGreaterThanOrEqual(newestBefore);
    }
    const distinct = new Set(versionsSeen).size;
    console.log(`reload: ${WRITES.length} writes (${VALID_COUNT} valid, ${INVALID_COUNT} invalid) in ${rewriting.toFixed(0)} ms under load; ${sent.length} requests, decided by ${distinct} distinct versions; statuses ${[...new Set(sent.map((s) => s.status))].join(',')}`);
    // The load really ran across the swaps: most versions decided some requests.
    expect(distinct).toBeGreaterThan(VALID_COUNT / 2);

    // Still the last valid version, from the clients' side.
    for (const who of CALLERS) {
      const [r] = await startLoad({ port: stack.port, ca: pki.caCert, callers: [{ name: who, cert: pki.client(who) }], connections: 1, path: PREDICT, maxRequests: 1 }).done();
      const want = decide(LAST_VALID, who);
      expect(r!.status).toBe(want.result === 'allow' ? 200 : 403);
      if (want.result === 'deny') expect((JSON.parse(r!.body) as { rule: string | null }).rule).toBe(want.rule);
    }
  });
});
