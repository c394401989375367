import { Hist } from './histogram.js';
import type { Opts } from './options.js';
import type { BucketRow, LatencyVerdict, MemorySeries, MemoryVerdict, PhaseResult, Sample } from './phase-result.js';
import { kendallTau, median, slope } from './stats.js';
import type { FullGc } from './trace-gc.js';
import { MIB } from './units.js';

/** A monotone trend: Kendall's tau of RSS against time at least this, together with a fitted rise of at least TREND_RISE. */
export const TREND_TAU = 0.6;
export const TREND_RISE = 1; // MiB over the window, from the fitted slope

/** memory flat: growth within --max-growth-mib over the series' window, and no monotone trend. */
export function memoryVerdict(o: Opts, series: MemorySeries, samples: Sample[]): MemoryVerdict {
  const w = samples.filter((s) => s.t >= series.windowStart - 1e-6);
  const ts = w.map((s) => s.t / 60);
  const mib = w.map((s) => s.rss[series.name]! / MIB);
  const k = Math.min(3, Math.floor(mib.length / 2));
  const first = k > 0 ? median(mib.slice(0, k)) : NaN;
  const last = k > 0 ? median(mib.slice(-k)) : NaN;
  const sl = slope(ts, mib);
  const tau = mib.length >= 3 ? kendallTau(ts, mib) : NaN;
  const span = ts.length ? ts[ts.length - 1]! - ts[0]! : 0;
  const trend = Number.isFinite(tau) && tau >= TREND_TAU && sl * span >= TREND_RISE;
  const growth = last - first;
  return {
    series, samples: mib.length, firstMiB: first, lastMiB: last, growthMiB: growth, slopeMiBPerMin: sl, riseMiB: sl * span, tau,
    minMiB: Math.min(...mib), maxMiB: Math.max(...mib), trend,
    flat: mib.length < 3 ? null : growth <= o.maxGrowthMiB && !trend,
  };
}

/** latency steady: client p99 of the last third of the post-warm-up buckets within --p99-factor of the first third's. */
export function latencyVerdict(o: Opts, buckets: BucketRow[], bucketS: number): LatencyVerdict {
  const after = buckets.filter((b) => b.index * bucketS >= o.warmupSeconds - 1e-6);
  const k = Math.max(1, Math.floor(after.length / 3));
  const early = after.slice(0, k);
  const late = after.slice(-k);
  const pool = (bs: BucketRow[]): Hist => bs.reduce((h, b) => h.merge(Hist.from(b.client.hist)), new Hist());
  const e = pool(early);
  const l = pool(late);
  const ratio = l.quantile(0.99) / e.quantile(0.99);
  return {
    early: early.map((b) => b.index + 1), late: late.map((b) => b.index + 1),
    earlyP99: e.quantile(0.99), lateP99: l.quantile(0.99), earlyP50: e.quantile(0.5), lateP50: l.quantile(0.5), ratio,
    steady: after.length < 2 ? null : ratio <= o.p99Factor,
  };
}

/** The server's full GCs during the phase, and the slope of the heap they left over the server's memory window. */
export function liveHeap(gcs: readonly FullGc[], memory: readonly MemorySeries[], t0: number, durationMs: number): Pick<PhaseResult, 'fullGcs' | 'liveHeapSlope'> {
  const fullGcs = gcs.filter((g) => g.at >= t0 && g.at <= t0 + durationMs + 1000)
    .map((g) => ({ t: (g.at - t0) / 1000, after: g.after, committed: g.committed })); // V8 prints MiB
  const start = memory.find((m) => m.name === 'server')?.windowStart ?? 0;
  const w = fullGcs.filter((g) => g.t >= start);
  return { fullGcs, liveHeapSlope: w.length >= 3 ? slope(w.map((g) => g.t / 60), w.map((g) => g.after)) : NaN };
}
