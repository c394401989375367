import { clock, f0, f1, f2, f3 } from './format.js';
import type { Opts } from './options.js';
import { bucketsTable, samplesTable } from './phase-tables.js';
import type { PhaseResult } from './phase-result.js';

/** Whole-phase totals: CPU, the decision log's growth, the server's cache hit rate, Envoy's counters. */
function totals(o: Opts, r: PhaseResult): string[] {
  const out = [`CPU over the phase, % of one CPU: ${Object.entries(r.cpuTotal).map(([k, v]) => `${k} ${f0(v)}`).join(', ')}`];
  if (r.decisionLogBytes !== null) out.push(`decision log: written to a file, not rotated; it grew to ${(r.decisionLogBytes / 1e6).toFixed(1)} MB (${(r.decisionLogBytes / 1e6 / o.minutes).toFixed(1)} MB/min)`);
  else out.push('decision log: off');
  const c = r.counters;
  const hits = c['server cache hits'] ?? NaN;
  const misses = c['server cache misses'] ?? NaN;
  if (Number.isFinite(hits + misses)) out.push(`server decision cache: ${f1((100 * hits) / (hits + misses))}% hits (${hits} hits, ${misses} misses, whole phase)`);
  const envoyC = Object.entries(c).filter(([k]) => k.startsWith('envoy '));
  if (envoyC.length) out.push(`Envoy counters at the end: ${envoyC.map(([k, v]) => `${k.slice(6)} ${v}`).join(', ')}`);
  return out;
}

/** The verdict lines: memory flat per series, the live heap, latency steady, errors by kind, notes. */
function verdicts(o: Opts, r: PhaseResult, markdown: boolean): string[] {
  const out = ['Verdicts:'];
  const bullet = markdown ? '- ' : '  ';
  for (const m of r.memory) {
    const word = m.flat === null ? 'NOT ENOUGH SAMPLES' : m.flat ? 'memory flat: yes' : 'memory flat: NO';
    out.push(`${bullet}${m.series.label}: ${word} — window ${m.series.why}, ${m.samples} samples; ` +
      `growth ${f2(m.growthMiB)} MiB (${f1(m.firstMiB)} -> ${f1(m.lastMiB)}, limit ${o.maxGrowthMiB}), slope ${f3(m.slopeMiBPerMin)} MiB/min ` +
      `(fitted rise ${f2(m.riseMiB)} MiB), ` +
      `Kendall tau ${f2(m.tau)}, range ${f1(m.minMiB)}-${f1(m.maxMiB)} MiB${m.trend ? ' — monotone upward trend' : ''}`);
  }
  if (r.fullGcs.length) {
    const mw = r.memory.find((m) => m.series.name === 'server');
    out.push(`${bullet}infergate-authz V8 heap after each full GC (node --trace-gc; MiB, committed in brackets): ` +
      r.fullGcs.map((g) => `${clock(g.t)} ${f1(g.after)} (${f0(g.committed)})`).join(', ') +
      `; slope over its memory window${mw ? ` (from t=${mw.series.windowStart}s)` : ''} ${Number.isFinite(r.liveHeapSlope) ? `${f3(r.liveHeapSlope)} MiB/min` : 'needs 3 full GCs in the window'}` +
      ' — retained memory; RSS growth with this flat is V8 keeping a bigger heap, not a leak');
  }
  const l = r.latency;
  const which = (xs: number[]): string => (xs.length === 1 ? `minute ${xs[0]}` : `minutes ${xs[0]}-${xs[xs.length - 1]}`);
  out.push(`${bullet}latency steady: ${l.steady === null ? 'NOT ENOUGH MINUTES after the warm-up' : l.steady ? 'yes' : 'NO'} — p99 ${f2(l.lateP99)} ms in ${which(l.late)} vs ` +
    `${f2(l.earlyP99)} ms in ${which(l.early)} (x${f2(l.ratio)}, limit x${o.p99Factor}); p50 ${f2(l.lateP50)} vs ${f2(l.earlyP50)} ms`);
  out.push(`${bullet}errors: ${r.errors === 0 ? 'none (every answer was the expected one)' : `${r.errors} unexpected answer(s) or failure(s)`}`);
  const kinds = Object.entries(r.errorKinds).sort((a, b) => b[1] - a[1]);
  for (const [k, n] of kinds.slice(0, 12)) out.push(`${bullet}  ${n} x ${k}${r.errorExamples[k] ? ` (e.g. ${r.errorExamples[k]})` : ''}`);
  if (kinds.length > 12) out.push(`${bullet}  ... and ${kinds.length - 12} more kinds (see --json)`);
  for (const n of r.notes) out.push(`${bullet}note: ${n}`);
  return out;
}

/** One phase's section of the report: heading, the two tables, totals, verdicts. */
export function phaseReport(o: Opts, r: PhaseResult, markdown: boolean): string {
  return [
    `${markdown ? '### ' : '== '}${r.spec.name} phase: ${r.spec.title}, ${r.spec.rate}/s offered, from ${r.startedAt} (load average ${r.loadAverage.start} -> ${r.loadAverage.end})`,
    '',
    ...samplesTable(r, markdown),
    '',
    ...bucketsTable(o, r, markdown),
    '',
    ...totals(o, r),
    '',
    ...verdicts(o, r, markdown),
  ].join('\n');
}
