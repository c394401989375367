import { clock, f0, f1, f2, f3, mib, table } from './format.js';
import { Hist } from './histogram.js';
import type { Opts } from './options.js';
import type { PhaseResult, Sample } from './phase-result.js';

/** The lowest V8 heap-used sample in (from, to]: the troughs of the GC sawtooth, where retained memory shows. */
function heapFloor(samples: Sample[], from: number, to: number): number {
  const v = samples.filter((s) => s.t > from + 0.5 && s.t <= to + 0.5).map((s) => s.extra.heapUsed ?? NaN).filter(Number.isFinite);
  return v.length ? Math.min(...v) : NaN;
}

/** The sample taken at (or just before) time t. */
function sampleAt(samples: Sample[], t: number): Sample | undefined {
  let best: Sample | undefined;
  for (const s of samples) if (s.t <= t + 0.5) best = s;
  return best;
}

/** The memory samples of a phase, one row each, with its caption. */
export function samplesTable(r: PhaseResult, markdown: boolean): string[] {
  const envoy = r.spec.name === 'envoy';
  const sHeaders = envoy ? ['t', 'Envoy RSS', 'Envoy allocated', 'server RSS', 'server heap used', 'cache entries']
    : ['t', 'server RSS', 'heap used', 'heap total', 'external', 'cache entries'];
  const sRows = r.samples.map((s) => envoy
    ? [clock(s.t), mib(s.rss.envoy), mib(s.extra.envoyAllocated), mib(s.rss.server), mib(s.extra.heapUsed), f0(s.extra.cacheEntries ?? NaN)]
    : [clock(s.t), mib(s.rss.server), mib(s.extra.heapUsed), mib(s.extra.heapTotal), mib(s.extra.external), f0(s.extra.cacheEntries ?? NaN)]);
  return ['Samples (memory in MiB):', table(sHeaders, sRows, markdown)];
}

/** The per-bucket ("minute") rows of a phase, with their caption: memory at the row's end, latency, rates, errors, lag, CPU. */
export function bucketsTable(o: Opts, r: PhaseResult, markdown: boolean): string[] {
  const envoy = r.spec.name === 'envoy';
  const caption = `Per ${o.bucketSeconds === 60 ? 'minute' : `${o.bucketSeconds} s`} (RSS and heap at the end of the row, heap min = lowest heap-used sample in the row; ` +
    'latency in ms from the scheduled send, server p50/p99 from its own histogram; rates per second; lag max = the generator\'s own lateness, ms):';
  const bHeaders = envoy
    ? ['minute', 'Envoy RSS', 'server RSS', 'p50', 'p99', 'answered/s', '2xx/s', '429/s', '403/s', 'errors', 'lag max', 'CPU% envoy/server/gen/others']
    : ['minute', 'RSS MiB', 'heap MiB', 'heap min', 'p50', 'p99', 'server p50', 'server p99', 'answered/s', 'denies/s', 'errors', 'lag max', 'CPU% server/gen/others'];
  const bRows = r.buckets.map((b) => {
    const s = sampleAt(r.samples, b.endS);
    const secs = b.endS - b.startS;
    const h = Hist.from(b.client.hist);
    const per = (n: number | undefined): string => f0((n ?? 0) / secs);
    const label = `${b.index + 1} (${clock(b.startS)}-${clock(b.endS)})`;
    return envoy
      ? [label, mib(s?.rss.envoy), mib(s?.rss.server), f2(h.quantile(0.5)), f2(h.quantile(0.99)), per(b.client.answered), per(b.client.ok),
          per(b.client.rejected['429']), per(b.client.rejected['403']), String(b.client.errors), f1(b.client.lagMaxMs),
          `${f0(b.cpu.envoy!)}/${f0(b.cpu.server!)}/${f0(b.cpu['load generator']!)}/${f0(b.cpu.others!)}`]
      : [label, mib(s?.rss.server), mib(s?.extra.heapUsed), mib(heapFloor(r.samples, b.startS, b.endS)), f2(h.quantile(0.5)), f2(h.quantile(0.99)), f3(b.serverP50), f3(b.serverP99),
          per(b.client.answered), per(b.client.rejected.deny), String(b.client.errors), f1(b.client.lagMaxMs),
          `${f0(b.cpu.server!)}/${f0(b.cpu['load generator']!)}/${f0(b.cpu.others!)}`];
  });
  return [caption, table(bHeaders, bRows, markdown)];
}
