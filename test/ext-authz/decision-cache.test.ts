import { describe, expect, it } from 'vitest';
import { DecisionCache } from '../../ext-authz/src/decision-cache.js';

function clock() {
  let t = 1000;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

describe('decision cache', () => {
  it('computes once and answers repeats from the cache', () => {
    const cache = new DecisionCache<{ v: number }>({ max: 10, ttlMs: 1000, jitter: 0 });
    let calls = 0;
    const compute = () => ({ v: ++calls });
    expect(cache.getOrCompute('k', compute)).toEqual({ value: { v: 1 }, hit: false });
    expect(cache.getOrCompute('k', compute)).toEqual({ value: { v: 1 }, hit: true });
    expect(calls).toBe(1);
  });

  it('expires entries after the TTL', () => {
    const c = clock();
    const cache = new DecisionCache<{ v: number }>({ max: 10, ttlMs: 1000, jitter: 0, now: c.now });
    cache.getOrCompute('k', () => ({ v: 1 }));
    c.advance(999);
    expect(cache.getOrCompute('k', () => ({ v: 2 })).hit).toBe(true);
    c.advance(2);
    expect(cache.getOrCompute('k', () => ({ v: 2 }))).toEqual({ value: { v: 2 }, hit: false });
  });

  it('keeps a value no longer than the cap it was computed with (the lifetime left to the token it rests on)', () => {
    const c = clock();
    const cache = new DecisionCache<{ v: number }>({ max: 10, ttlMs: 60_000, jitter: 0, now: c.now });
    cache.getOrCompute('k', () => ({ v: 1 }), 300);
    c.advance(299);
    expect(cache.getOrCompute('k', () => ({ v: 2 })).hit).toBe(true);
    c.advance(2);
    expect(cache.getOrCompute('k', () => ({ v: 2 }), 300)).toEqual({ value: { v: 2 }, hit: false });
    // A token already past its exp leaves nothing behind.
    cache.getOrCompute('gone', () => ({ v: 3 }), -5);
    expect(cache.getOrCompute('gone', () => ({ v: 4 })).hit).toBe(false);
  });

  it('shortens each TTL by up to the jitter fraction, never lengthens it', () => {
    const c = clock();
    const cache = new DecisionCache<{ v: number }>({ max: 10, ttlMs: 1000, jitter: 0.5, now: c.now, random: () => 1 });
    cache.getOrCompute('k', () => ({ v: 1 }));
    c.advance(501);
    expect(cache.getOrCompute('k', () => ({ v: 2 })).hit).toBe(false);
  });

  it('is bounded in size, evicting the least recently used', () => {
    const cache = new DecisionCache<{ v: string }>({ max: 2, ttlMs: 60_000, jitter: 0 });
    cache.getOrCompute('a', () => ({ v: 'a' }));
    cache.getOrCompute('b', () => ({ v: 'b' }));
    cache.getOrCompute('a', () => ({ v: 'x' }));
    cache.getOrCompute('c', () => ({ v: 'c' }));
    expect(cache.size).toBe(2);
    expect(cache.getOrCompute('b', () => ({ v: 'b2' })).hit).toBe(false);
    expect(cache.getOrCompute('c', () => ({ v: 'c2' })).hit).toBe(true);
  });

  it('does not cache a computation that throws', () => {
    const cache = new DecisionCache<{ v: number }>({ max: 10, ttlMs: 1000, jitter: 0 });
    expect(() => cache.getOrCompute('k', () => { throw new Error('eval failed'); })).toThrow('eval failed');
    expect(cache.getOrCompute('k', () => ({ v: 1 })).hit).toBe(false);
  });

  it('can be turned off', () => {
    const cache = new DecisionCache<{ v: number }>({ max: 0, ttlMs: 1000, jitter: 0 });
    let calls = 0;
    cache.getOrCompute('k', () => ({ v: ++calls }));
    expect(cache.getOrCompute('k', () => ({ v: ++calls })).hit).toBe(false);
    expect(calls).toBe(2);
    expect(cache.enabled).toBe(false);
  });

  it('forgets everything on clear (policy reload)', () => {
    const cache = new DecisionCache<{ v: number }>({ max: 10, ttlMs: 1000, jitter: 0 });
    cache.getOrCompute('k', () => ({ v: 1 }));
    cache.clear();
    expect(cache.getOrCompute('k', () => ({ v: 2 })).value).toEqual({ v: 2 });
  });

  it('runs one computation for concurrent misses on the same key (single-flight)', async () => {
    const cache = new DecisionCache<{ v: number }>({ max: 10, ttlMs: 1000, jitter: 0 });
    let calls = 0;
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const compute = async () => {
      calls++;
      await gate;
      return { v: calls };
    };
    const all = Promise.all([cache.getOrComputeAsync('k', compute), cache.getOrComputeAsync('k', compute), cache.getOrComputeAsync('k', compute)]);
    release();
    const results = await all;
    expect(calls).toBe(1);
    expect(results.map((r) => r.value.v)).toEqual([1, 1, 1]);
    expect(results.filter((r) => !r.hit)).toHaveLength(1);
  });
});
