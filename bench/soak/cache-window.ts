import { DEFAULTS } from '../../ext-authz/src/server.js';
import type { Opts } from './options.js';

/** The server's default decision cache size (infergate-authz --cache-size); the soak does not change it. */
export const CACHE_SIZE = DEFAULTS.cacheSize;

/**
 * When a server's memory window opens: after the warm-up, and after the
 * decision cache is full by construction (its growth to that bound is by
 * design, not a leak), with the reason in words for the report.
 */
export function cacheWindow(o: Opts, rate: number, distinctShare: number): { start: number; fill: number; why: string } {
  const perSecond = rate * distinctShare;
  const fill = perSecond > 0 ? CACHE_SIZE / perSecond : Infinity;
  const start = Math.max(o.warmupSeconds, Number.isFinite(fill) ? Math.ceil(fill) : 0);
  const why = Number.isFinite(fill)
    ? `from t=${start}s: after the warm-up (${o.warmupSeconds} s)${fill > o.warmupSeconds ? ` and after the decision cache is full (${CACHE_SIZE} entries at ${perSecond.toFixed(0)} new/s: ${fill.toFixed(0)} s; its growth to that bound is by design)` : ` (the decision cache, ${CACHE_SIZE} entries at ${perSecond.toFixed(0)} new/s, is full by ${fill.toFixed(0)} s)`}`
    : `from t=${start}s (the warm-up); no distinct requests, so the cache holds the hot set only`;
  return { start, fill, why };
}

/** The note a phase adds when its server's memory window would open too late to judge anything. */
export function lateWindowNote(o: Opts, start: number, whose: string): string | null {
  return start >= o.minutes * 60 ? `${whose} memory window starts at ${start} s, at or after the end of the phase: raise --minutes or --miss-share` : null;
}
