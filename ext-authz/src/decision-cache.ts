import { LRUCache } from 'lru-cache';

export interface CacheOptions {
  /** Entries at most; 0 turns the cache off. */
  readonly max: number;
  readonly ttlMs: number;
  /**
   * Fraction of the TTL removed at random per entry (0 to 1), so entries
   * written together do not all expire together and stampede the policy.
   */
  readonly jitter: number;
  /** Clock for TTLs, injectable for tests. */
  readonly now?: () => number;
  readonly random?: () => number;
}

export interface Lookup<V> {
  readonly value: V;
  readonly hit: boolean;
}

/**
 * An LRU + TTL decision cache with single-flight misses: while a value for a
 * key is being computed asynchronously, other callers for the same key wait
 * for that computation instead of starting their own. Synchronous computes
 * cannot interleave, so they never need the wait.
 */
export class DecisionCache<V extends object> {
  private readonly lru: LRUCache<string, V> | null;
  private readonly inflight = new Map<string, Promise<V>>();
  private readonly random: () => number;

  constructor(private readonly opts: CacheOptions) {
    this.random = opts.random ?? Math.random;
    this.lru =
      opts.max > 0
        ? new LRUCache<string, V>({
            max: opts.max,
            ttl: opts.ttlMs,
            ttlAutopurge: false,
            // An injected clock is read on every check; the real one is sampled at most once per ms.
            ...(opts.now ? { perf: { now: opts.now }, ttlResolution: 0 } : {}),
          })
        : null;
  }

  get enabled(): boolean {
    return this.lru !== null;
  }

  get size(): number {
    return this.lru?.size ?? 0;
  }

  private ttl(): number {
    return Math.max(1, Math.round(this.opts.ttlMs * (1 - this.opts.jitter * this.random())));
  }

  /**
   * Returns the cached value, or computes, caches and returns it. `ttlCapMs`
   * bounds how long a value computed now may be kept (a token's remaining
   * lifetime); at or below 0 the value is not cached at all.
   */
  getOrCompute(key: string, compute: () => V, ttlCapMs?: number): Lookup<V> {
    const lru = this.lru;
    if (lru === null) return { value: compute(), hit: false };
    const cached = lru.get(key);
    if (cached !== undefined) return { value: cached, hit: true };
    const value = compute();
    const ttl = ttlCapMs === undefined ? this.ttl() : Math.min(this.ttl(), Math.floor(ttlCapMs));
    if (ttl > 0) lru.set(key, value, { ttl });
    return { value, hit: false };
  }

  /** Async variant: concurrent misses for one key share one computation. */
  async getOrComputeAsync(key: string, compute: () => Promise<V>): Promise<Lookup<V>> {
    const lru = this.lru;
    if (lru === null) return { value: await compute(), hit: false };
    const cached = lru.get(key);
    if (cached !== undefined) return { value: cached, hit: true };
    const pending = this.inflight.get(key);
    if (pending) return { value: await pending, hit: true };
    const p = compute();
    this.inflight.set(key, p);
    try {
      const value = await p;
      lru.set(key, value, { ttl: this.ttl() });
      return { value, hit: false };
    } finally {
      this.inflight.delete(key);
    }
  }

  clear(): void {
    this.lru?.clear();
    this.inflight.clear();
  }
}
