import { readFileSync } from 'node:fs';
import { Agent } from 'node:https';
import { parse } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startQuotaStack, type QuotaStack } from '../helpers/quota-stack.js';
import { headerValues, postRaw, type RawReply } from '../helpers/raw-reply.js';

/**
 * Global quotas across two replicas, every part real: two Envoys (one worker
 * each) in front of one model, the built infergate-authz, one
 * envoyproxy/ratelimit service started with the ratelimit-config.yaml that
 * `infergate render` wrote for this manifest, and one Redis
 * (test/helpers/quota-stack.ts).
 *
 * Tolerance: none. Within one window a caller gets exactly its budget however
 * its requests are spread over the replicas: each request is one atomic
 * INCRBY in Redis before Envoy forwards it, the service's local over-limit
 * cache is off (LOCAL_CACHE_SIZE_IN_BYTES unset), and a service that cannot
 * answer makes a deny budget refuse (503), never admit. Windows are fixed and
 * aligned to the clock (a day here), so the test first steps away from
 * midnight UTC: a run across the boundary would start a fresh budget.
 */

const DAY = 86_400;
const BUDGET = 20;
const SOFT_BUDGET = 50;
const ID = (sa: string, ns = 'quota') => `spiffe://cluster.local/ns/${ns}/sa/${sa}`;
const CLIENTS = {
  spreader: ID('spreader'),
  neighbour: ID('neighbour'),
  headers: ID('headers'),
  bursty: ID('bursty'),
  failer: ID('failer'),
  victim: ID('victim'),
  reporter: ID('reporter', 'reports'),
  /** Allowed by the rules, covered by no budget: warms both replicas and the server up. */
  warmup: ID('warmup', 'warm'),
};
type Client = keyof typeof CLIENTS;
const PREDICT = '/v1/models/shared:predict';

const MANIFEST = `trustDomains: [cluster.local]
rules:
  - name: quota-callers
    callers: ["spiffe://cluster.local/ns/quota/*", "spiffe://cluster.local/ns/reports/*", "spiffe://cluster.local/ns/warm/*"]
    methods: [POST]
    paths: ["/v1/models/*:predict"]
deployment:
  namespace: infergate-system
  server: { image: ghcr.io/infergate/infergate-authz:0.1.0 }
  workloads:
    - { name: model-serving, namespace: ml, selector: { app: model-serving } }
  filters:
    payloadLimit: { config: { defaultMaxBytes: 65536 } }
    rateLimit:
      config:
        identity: header:x-infergate-quota
        # Far above the global budgets: per replica, the guard alone would admit every request here.
        default: { perSecond: 1000, burst: 1000 }
        callers:
          - { match: "workload/${CLIENTS.bursty}", perSecond: 1, burst: 3 }
        unauthenticated: deny
globalQuotas:
  failureMode: deny
  budgets:
    - name: quota-callers
      per: caller
      callers: ["spiffe://cluster.local/ns/quota/*"]
      limit: { requests: ${BUDGET}, unit: day }
    - name: reports-soft
      per: caller
      callers: ["spiffe://cluster.local/ns/reports/*"]
      limit: { requests: ${SOFT_BUDGET}, unit: day }
      failureMode: allow
`;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The one value of a header: every limiter appends its own, and the header filter must leave exactly one. */
function one(r: RawReply, name: string): string {
  const v = headerValues(r, name);
  expect(v, `${name} in ${JSON.stringify(r.headers)}`).toHaveLength(1);
  return v[0]!;
}

describe('global quotas: two Envoys, one rate-limit service started with the rendered file, one Redis', () => {
  let stack: QuotaStack;

  const send = (who: Client, replica: 0 | 1, agent?: Agent) =>
    postRaw(stack.replicas[replica], stack.pki.caCert, stack.pki.client(who), { path: PREDICT, ...(agent ? { agent } : {}) });
  const reachedModel = (who: Client) => stack.upstream.requests.filter((r) => r.headers['x-infergate-caller'] === CLIENTS[who]).length;

  /**
   * Sends as `who`, alternating replicas, until a 429 after at least one 200.
   * With `unavailable`, a 503 (the service cannot count) is a refusal to wait out, not a failure.
   */
  async function drain(who: Client, deadlineMs: number, unavailable = false): Promise<{ admitted: number; unavailable: number; refused: RawReply; ms: number }> {
    let admitted = 0;
    let refused503 = 0;
    const start = Date.now();
    for (let i = 0; Date.now() < start + deadlineMs; i++) {
      const r = await send(who, (i % 2) as 0 | 1);
      if (r.status === 200) admitted++;
      else if (r.status === 429 && admitted > 0) return { admitted, unavailable: refused503, refused: r, ms: Date.now() - start };
      else if (r.status === 503 && unavailable) (refused503++, await sleep(20));
      else throw new Error(`${who}: unexpected ${r.status} after ${admitted} admitted: ${r.body}`);
    }
    throw new Error(`${who}: not refused within ${deadlineMs} ms (${admitted} admitted)`);
  }

  beforeAll(async () => {
    // Counting starts over at each window's start (midnight UTC for a day): keep the run inside one.
    const toMidnight = DAY - ((Date.now() / 1000) % DAY);
    if (toMidnight < 90) await sleep((toMidnight + 2) * 1000);
    stack = await startQuotaStack({ name: 'global-quotas', manifest: MANIFEST, clients: CLIENTS });
    // The first checks after start-up can outlast ext_authz's timeout (a 403 with no reason): warm
    // both replicas and the server's workers before any request that is counted.
    const end = Date.now() + 15_000;
    for (;;) {
      const statuses = await Promise.all(Array.from({ length: 16 }, (_, i) => send('warmup', (i % 2) as 0 | 1).then((r) => r.status)));
      if (statuses.every((s) => s === 200)) break;
      if (Date.now() > end) throw new Error(`the stack did not warm up: ${statuses.join(' ')}`);
      await sleep(200);
    }
  }, 150_000);

  afterAll(async () => {
    await stack?.stop();
  });

  it('the service runs on exactly the file infergate render wrote: its /rlconfig lists each rendered budget with its limit', async () => {
    const rendered = parse(stack.renderedConfig) as { domain: string; descriptors: Array<{ key: string; value: string; descriptors: Array<{ key: string; rate_limit: { unit: string; requests_per_unit: number } }> }> };
    expect(rendered.domain).toBe('infergate');
    expect(readFileSync(stack.serviceConfigFile(), 'utf8')).toBe(stack.renderedConfig);
    const loaded = (await (await fetch(`http://127.0.0.1:${stack.rateLimit().debugPort}/rlconfig`)).text()).trim().split('\n').sort();
    const expected = rendered.descriptors.flatMap((d) => d.descriptors.map((s) =>
      `${rendered.domain}.${d.key}_${d.value}.${s.key}: unit=${s.rate_limit.unit.toUpperCase()} requests_per_unit=${s.rate_limit.requests_per_unit}`)).sort();
    expect(expected).toEqual([
      `infergate.budget_quota-callers.caller: unit=DAY requests_per_unit=${BUDGET}`,
      `infergate.budget_reports-soft.caller: unit=DAY requests_per_unit=${SOFT_BUDGET}`,
    ]);
    // Each line also says shadow_mode and the like; the limit is what must match.
    expect(loaded.map((l) => l.replace(/, shadow_mode: .*$/, ''))).toEqual(expected);
  });

  it(`a caller spreading ${3 * BUDGET} concurrent requests over both replicas gets exactly its budget of ${BUDGET} in all, not ${BUDGET} per replica; another caller of the same budget is unaffected`, async () => {
    const agents = [new Agent({ keepAlive: true, maxSockets: 6 }), new Agent({ keepAlive: true, maxSockets: 6 })];
    try {
      const replies = await Promise.all(Array.from({ length: 3 * BUDGET }, (_, i) => send('spreader', (i % 2) as 0 | 1, agents[i % 2]).then((r) => ({ replica: i % 2, r }))));
      const statuses: Record<number, number> = {};
      for (const { r } of replies) statuses[r.status] = (statuses[r.status] ?? 0) + 1;
      const odd = replies.filter(({ r }) => r.status !== 200 && r.status !== 429).map(({ r }) => ({ status: r.status, headers: r.headers, body: r.body }));
      expect(statuses, JSON.stringify(odd)).toEqual({ 200: BUDGET, 429: 2 * BUDGET });
      const admitted = replies.filter((x) => x.r.status === 200);
      // Both replicas served part of it: the budget was shared, not held by one of them.
      for (const replica of [0, 1]) expect(admitted.filter((x) => x.replica === replica).length, `replica ${replica}`).toBeGreaterThan(0);
      expect(reachedModel('spreader')).toBe(BUDGET);
    } finally {
      for (const a of agents) a.destroy();
    }
    // Its own bucket of the same budget, full, and one counter whichever replica answers.
    const first = await send('neighbour', 0);
    const second = await send('neighbour', 1);
    expect([first.status, second.status]).toEqual([200, 200]);
    expect([one(first, 'x-ratelimit-remaining'), one(second, 'x-ratelimit-remaining')]).toEqual([String(BUDGET - 1), String(BUDGET - 2)]);
  });

  it('counts down one shared counter across the replicas, and the 429s say the limit, none left, and when to retry, each once', async () => {
    for (let i = 1; i <= BUDGET; i++) {
      const r = await send('headers', (i % 2) as 0 | 1);
      expect(r.status).toBe(200);
      expect([one(r, 'x-ratelimit-limit'), one(r, 'x-ratelimit-remaining')]).toEqual([`${BUDGET}, ${BUDGET};w=${DAY}`, String(BUDGET - i)]);
      expect(headerValues(r, 'retry-after')).toEqual([]);
    }
    for (const replica of [0, 1] as const) {
      const refused = await send('headers', replica);
      expect(refused.status).toBe(429);
      expect([one(refused, 'x-ratelimit-limit'), one(refused, 'x-ratelimit-remaining')]).toEqual([`${BUDGET}, ${BUDGET};w=${DAY}`, '0']);
      const reset = Number(one(refused, 'x-ratelimit-reset'));
      // The seconds left in the day's window, by this machine's clock (the service's is the same).
      const left = DAY - Math.floor(Date.now() / 1000) % DAY;
      expect(Math.abs(reset - left), `reset ${reset}, ${left} s to midnight UTC`).toBeLessThanOrEqual(2);
      expect(one(refused, 'retry-after')).toBe(String(reset));
      expect(one(refused, 'x-envoy-ratelimited')).toBe('true');
    }
    expect(reachedModel('headers')).toBe(BUDGET);
  });

  it('the guard runs first: a request it refuses (per replica) never reaches the global count, one it admits does', async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const onFirst: RawReply[] = [];
    try {
      for (let i = 0; i < 5; i++) onFirst.push(await send('bursty', 0, agent));
    } finally {
      agent.destroy();
    }
    const admitted = onFirst.filter((r) => r.status === 200).length;
    const guardRefused = onFirst.filter((r) => r.status === 429);
    // Burst 3, 1/s: the guard refuses the rest of a quick burst, with its own reason.
    expect(guardRefused.length).toBeGreaterThan(0);
    for (const r of guardRefused) expect(JSON.parse(r.body)).toMatchObject({ code: 'rate_limited' });
    expect(admitted).toBeGreaterThanOrEqual(3);
    // The other replica's guard has its own full bucket; the global counter holds only what the first admitted.
    const next = await send('bursty', 1);
    expect(next.status).toBe(200);
    expect(one(next, 'x-ratelimit-remaining')).toBe(String(BUDGET - admitted - 1));
  });

  it('with the service killed, the deny budget refuses (503) and the allow budget serves; restarted, enforcement resumes where it was', async () => {
    expect((await send('failer', 0)).status).toBe(200);
    expect(one(await send('reporter', 1), 'x-ratelimit-remaining')).toBe(String(SOFT_BUDGET - 1));
    stack.rateLimit().kill('SIGKILL');
    await stack.rateLimit().exited();
    for (const replica of [0, 1] as const) {
      const denied = await send('failer', replica);
      expect(denied.status).toBe(503);
      expect(headerValues(denied, 'retry-after')).toEqual([]);
      const served = await send('reporter', replica);
      expect(served.status).toBe(200);
    }
    await stack.restartRateLimit();
    // Envoy reconnects to the restarted service on its own; give it a moment.
    const restarted = Date.now();
    let back: RawReply;
    do {
      back = await send('failer', 0);
      if (back.status === 503) await sleep(20);
    } while (back.status === 503 && Date.now() < restarted + 10_000);
    console.log(`service restarted: enforcing again after ${Date.now() - restarted} ms`);
    expect(back.status).toBe(200);
    // The counters lived in Redis: the spreader is still out of budget on both replicas.
    expect([(await send('spreader', 0)).status, (await send('spreader', 1)).status]).toEqual([429, 429]);
    // The allow budget counts again (the two requests served while the service was down were not counted).
    expect(one(await send('reporter', 1), 'x-ratelimit-remaining')).toBe(String(SOFT_BUDGET - 2));
  }, 30_000);

  it('restarting Redis loses at most the current window: the caller gets its budget once more, not more, and is refused again', async () => {
    const before = await drain('victim', 10_000);
    expect(before.admitted).toBe(BUDGET);
    await stack.restartRedis(async () => {
      // Nothing can count while Redis is down: a deny budget refuses.
      expect((await send('victim', 0)).status).toBe(503);
    });
    // The service's Redis connections fail one by one and reconnect: until they have, some requests
    // get 503 (not counted, as Redis never saw them); none is admitted beyond the budget.
    const after = await drain('victim', 15_000, true);
    console.log(`after the Redis restart: ${after.admitted} admitted, ${after.unavailable} got 503 while the service reconnected, ${after.ms} ms`);
    expect(after.admitted).toBe(BUDGET);
    expect(one(after.refused, 'x-ratelimit-remaining')).toBe('0');
    expect(reachedModel('victim')).toBe(2 * BUDGET);
  }, 40_000);
});
