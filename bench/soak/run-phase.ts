import { existsSync, statSync } from 'node:fs';
import { now, sleepUntil } from './clock.js';
import { cpuBetween, cpuMark, type CpuMark } from './cpu.js';
import { forkLoadGenerator } from './load-generator-process.js';
import type { BucketReport, WorkerStart } from './load-protocol.js';
import type { Opts } from './options.js';
import type { BucketRow, MemorySeries, PhaseResult, Sample, Watched } from './phase-result.js';
import { loadavg, rssBytes } from './proc.js';
import { durationBuckets, histogramQuantile, metricsText } from './server-metrics.js';
import type { FullGc } from './trace-gc.js';
import { MIB } from './units.js';
import { latencyVerdict, liveHeap, memoryVerdict } from './verdicts.js';

/** What every phase is given: the options, a scratch directory, and the script to fork as the load generator. */
export interface PhaseContext {
  o: Opts;
  tmp: string;
  /** The entry script, re-run with --worker as the load generator. */
  self: string;
}

/** A phase set up and ready to be driven: what to watch and sample, and where the load goes. */
export interface PhaseSpec {
  name: 'server' | 'envoy';
  title: string;
  watched: Watched[];
  memory: MemorySeries[];
  serverMetricsPort: number;
  extraSample: () => Promise<Record<string, number>>;
  worker: Omit<WorkerStart, 't0' | 'durationMs' | 'bucketMs' | 'timeoutMs' | 'missShare'>;
  alive: () => string | null;
  /** The server's full GCs (appended to while the phase runs). */
  fullGcs: FullGc[];
}

/** CPU ticks and the server's duration histogram at a bucket boundary. */
interface Mark extends CpuMark { hist: Array<[number, number]> }

/** The per-bucket rows: the generator's report for the bucket, with the server's histogram and the CPU between the bucket's two marks. */
function bucketRows(reports: BucketReport[], marks: Mark[], names: string[], bucketMs: number, durationMs: number): BucketRow[] {
  const buckets: BucketRow[] = [];
  for (const rep of reports) {
    const a = marks[rep.index];
    const b = marks[rep.index + 1];
    if (!a || !b) continue;
    buckets.push({
      index: rep.index,
      startS: (rep.index * bucketMs) / 1000,
      endS: Math.min(((rep.index + 1) * bucketMs) / 1000, durationMs / 1000),
      client: rep,
      serverP50: histogramQuantile(0.5, a.hist, b.hist) * 1000,
      serverP99: histogramQuantile(0.99, a.hist, b.hist) * 1000,
      serverChecks: (b.hist[b.hist.length - 1]?.[1] ?? 0) - (a.hist[a.hist.length - 1]?.[1] ?? 0),
      cpu: cpuBetween(names, a, b),
    });
  }
  return buckets;
}

/** The instants (s from t0) at which a sample is taken, a bucket closes, or both. */
function schedule(sampleSeconds: number, bucketMs: number, durationMs: number): { sampleTimes: number[]; bucketEnds: number[]; events: number[] } {
  const sampleTimes: number[] = [];
  for (let t = sampleSeconds; t < durationMs / 1000 - 1e-6; t += sampleSeconds) sampleTimes.push(t);
  const bucketEnds: number[] = [];
  for (let t = bucketMs / 1000; t < durationMs / 1000 - 1e-6; t += bucketMs / 1000) bucketEnds.push(t);
  const events = [...new Set([...sampleTimes, ...bucketEnds].map((t) => Math.round(t * 1000) / 1000))].sort((a, b) => a - b);
  return { sampleTimes, bucketEnds, events };
}

/** Drives one phase for --minutes with the open-loop load generator, sampling memory and marking CPU and latency per bucket. */
export async function runPhase(ctx: PhaseContext, spec: PhaseSpec, rate: number, decisionLog: string | null): Promise<PhaseResult> {
  const { o } = ctx;
  const durationMs = o.minutes * 60_000;
  const bucketMs = Math.min(o.bucketSeconds * 1000, durationMs);
  const gen = await forkLoadGenerator(ctx.self);
  const watched: Watched[] = [...spec.watched, { name: 'load generator', pid: gen.pid }, { name: 'bench (sampler, upstream)', pid: process.pid }];
  await gen.prepare({ ...spec.worker, t0: 0, durationMs, bucketMs, timeoutMs: o.timeoutMs, missShare: o.missShare });
  const t0 = now() + 300;
  gen.go(t0);
  const startedAt = new Date(t0).toISOString();
  const loadStart = loadavg();

  const samples: Sample[] = [];
  const sample = async (t: number): Promise<void> => {
    const dead = spec.alive();
    if (dead) throw new Error(dead);
    const rss: Record<string, number> = {};
    for (const m of spec.memory) rss[m.name] = rssBytes(spec.watched.find((w) => w.name === m.name)!.pid);
    samples.push({ t, rss, extra: await spec.extraSample() });
  };
  const pids = watched.map((w) => w.pid);
  const names = watched.map((w) => w.name);
  const mark = async (): Promise<Mark> => ({ ...cpuMark(pids), hist: durationBuckets(await metricsText(spec.serverMetricsPort)) });

  const marks: Mark[] = [];
  await sleepUntil(t0);
  marks.push(await mark());
  await sample(0);
  const { sampleTimes, bucketEnds, events } = schedule(o.sampleSeconds, bucketMs, durationMs);
  const progress = (t: number): void => {
    const s = samples[samples.length - 1];
    const mem = s ? Object.entries(s.rss).map(([k, v]) => `${k} ${(v / MIB).toFixed(1)} MiB`).join(', ') : '';
    process.stdout.write(`  ${spec.name} t=${t.toFixed(0)}s ${mem}\n`);
  };
  for (const t of events) {
    await Promise.race([sleepUntil(t0 + t * 1000), gen.finished]);
    if (bucketEnds.includes(t)) marks.push(await mark());
    if (sampleTimes.includes(t)) await sample(t);
    if (bucketEnds.includes(t) || (t % 60 === 0 && t > 0)) progress(t);
  }
  await sleepUntil(t0 + durationMs);
  await sample(durationMs / 1000);
  await gen.finished;
  marks.push(await mark());
  progress(durationMs / 1000);
  const dead = spec.alive();
  if (dead) throw new Error(dead);

  const reports = [...gen.reports].sort((a, b) => a.index - b.index);
  const buckets = bucketRows(reports, marks, names, bucketMs, durationMs);
  const errors = reports.reduce((n, r) => n + r.errors, 0);
  const errorKinds: Record<string, number> = {};
  for (const r of reports) for (const [k, n] of Object.entries(r.errorKinds)) errorKinds[k] = (errorKinds[k] ?? 0) + n;
  return {
    spec: { name: spec.name, title: spec.title, rate },
    startedAt,
    samples,
    buckets,
    cpuTotal: cpuBetween(names, marks[0]!, marks[marks.length - 1]!),
    memory: spec.memory.map((m) => memoryVerdict(o, m, samples)),
    latency: latencyVerdict(o, buckets, bucketMs / 1000),
    errors,
    errorKinds,
    errorExamples: gen.examples,
    decisionLogBytes: decisionLog !== null && existsSync(decisionLog) ? statSync(decisionLog).size : null,
    loadAverage: { start: loadStart, end: loadavg() },
    counters: {},
    ...liveHeap(spec.fullGcs, spec.memory, t0, durationMs),
    notes: [],
  };
}
