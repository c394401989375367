import type { BucketReport } from './load-protocol.js';

/** What one phase yields (and --json writes), and the parts it is made of. */

/** A process whose CPU (and, if a MemorySeries names it, RSS) the phase watches. */
export interface Watched { name: string; pid: number }

export interface Sample {
  t: number;
  /** VmRSS by process name, bytes. */
  rss: Record<string, number>;
  /** Other figures by name (server heap, cache entries, Envoy allocator). */
  extra: Record<string, number>;
}

export interface BucketRow {
  index: number;
  startS: number;
  endS: number;
  client: BucketReport;
  /** Server's own view: p50/p99 in ms from infergate_check_duration_seconds over this bucket. */
  serverP50: number;
  serverP99: number;
  serverChecks: number;
  /** % of one CPU per process, and everything else on the machine. */
  cpu: Record<string, number>;
}

export interface MemorySeries {
  /** Process name (a key of Sample.rss). */
  name: string;
  label: string;
  /** Seconds from the phase start at which the verdict window opens. */
  windowStart: number;
  why: string;
}

export interface MemoryVerdict {
  series: MemorySeries;
  samples: number;
  firstMiB: number;
  lastMiB: number;
  growthMiB: number;
  slopeMiBPerMin: number;
  /** slope x window length. */
  riseMiB: number;
  tau: number;
  minMiB: number;
  maxMiB: number;
  trend: boolean;
  flat: boolean | null;
}

export interface LatencyVerdict {
  early: number[];
  late: number[];
  earlyP99: number;
  lateP99: number;
  earlyP50: number;
  lateP50: number;
  ratio: number;
  steady: boolean | null;
}

export interface PhaseResult {
  spec: { name: string; title: string; rate: number };
  startedAt: string;
  samples: Sample[];
  buckets: BucketRow[];
  cpuTotal: Record<string, number>;
  memory: MemoryVerdict[];
  latency: LatencyVerdict;
  errors: number;
  errorKinds: Record<string, number>;
  errorExamples: Record<string, string>;
  decisionLogBytes: number | null;
  loadAverage: { start: string; end: string };
  /** Totals read at the end of the phase: the server's cache counters, Envoy's ext_authz and upstream counters. */
  counters: Record<string, number>;
  /** The server's full GCs during the phase: t in s from the phase start, heap after GC and committed, MiB. */
  fullGcs: Array<{ t: number; after: number; committed: number }>;
  /** Least-squares slope of the heap after full GC over the server's memory window, MiB/min (NaN below 3 GCs). */
  liveHeapSlope: number;
  notes: string[];
}
