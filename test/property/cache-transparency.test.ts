import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requestArb, sequenceArb, show, wellFormedRequestArb } from './helpers/grammar.js';
import { MANIFEST } from './helpers/manifest.js';
import { cacheHit, outcomeOf, startServer, toCheckRequest, type RunningServer } from './helpers/server.js';

// Small enough that a pool of requests larger than it forces evictions.
const CACHE_SIZE = 32;
const WINDOW = 20;
const POLICY_CODES = new Set(['allowed', 'foreign_trust_domain', 'quarantined', 'denied_by_rule', 'no_matching_rule']);

// Mostly checks that reach the policy (the only ones cached), some of every other kind.
const POOL_REQUEST = fc.oneof({ weight: 2, arbitrary: wellFormedRequestArb }, { weight: 1, arbitrary: requestArb });

describe('the decision cache is transparent (property)', () => {
  let cached: RunningServer;
  let uncached: RunningServer;

  beforeAll(async () => {
    [cached, uncached] = await Promise.all([startServer(MANIFEST, CACHE_SIZE), startServer(MANIFEST, 0)]);
  });

  afterAll(async () => {
    await Promise.all([cached?.stop(), uncached?.stop()]);
  });

  it('a server with a small cache decides every check of a long, repetitive sequence exactly as one without', async () => {
    let checks = 0;
    let hits = 0;
    let evictingRuns = 0;
    await fc.assert(
      fc.asyncProperty(sequenceArb(POOL_REQUEST, 30, 160, 200, 250), async (sequence) => {
        // Requests refused before the policy (bad identity or route) are never cached; count the others.
        const cacheable = new Set<string>();
        // In small windows, in order on one channel each: the server decides one check at a time, so
        // the cache still sees (nearly) the generated order, and the run stays within seconds.
        for (let i = 0; i < sequence.length; i += WINDOW) {
          const window = sequence.slice(i, i + WINDOW);
          const answers = await Promise.all(
            window.map((req) => {
              const msg = toCheckRequest(req);
              return Promise.all([cached.client.check(msg), uncached.client.check(msg)]);
            }),
          );
          answers.forEach(([a, b], k) => {
            checks++;
            if (cacheHit(a)) hits++;
            expect(cacheHit(b), 'the server with cacheSize 0 answered from a cache').toBe(false);
            const request = show(window[k]!);
            const decision = outcomeOf(a);
            expect({ check: i + k, request, decision }).toEqual({ check: i + k, request, decision: outcomeOf(b) });
            if (POLICY_CODES.has(decision.code)) cacheable.add(request);
          });
        }
        if (cacheable.size > CACHE_SIZE) evictingRuns++;
      }),
      // Shrinking re-runs whole sequences; bound it so a failure is reported, partly shrunk, in time.
      { numRuns: 7, interruptAfterTimeLimit: 20_000, markInterruptAsFailure: true },
    );
    // The property is only worth something if the cache was actually used and overflowed.
    expect(checks).toBeGreaterThanOrEqual(1400);
    expect(hits).toBeGreaterThan(checks / 6);
    console.log(`cache transparency: ${checks} checks per server, ${hits} cache hits, ${evictingRuns} runs with more cacheable requests than cache entries`);
    expect(evictingRuns).toBeGreaterThan(0);
  }, 60_000);
});
