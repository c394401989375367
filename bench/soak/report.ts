import type { Opts } from './options.js';
import { phaseReport } from './phase-report.js';
import type { PhaseResult } from './phase-result.js';
import { TREND_RISE, TREND_TAU } from './verdicts.js';

/** The verdicts' precise definitions, printed after the results. */
export function definitions(o: Opts): string[] {
  return [
    'Definitions:',
    `  memory flat: over the window (samples from its start to the end of the phase), growth = median of the last 3 samples - median of the first 3 <= ${o.maxGrowthMiB} MiB,`,
    `    and no monotone trend, where a trend is Kendall's tau-b of RSS against time >= ${TREND_TAU} together with a least-squares slope`,
    `    that adds up to >= ${TREND_RISE} MiB over the window (a leak has both; an allocator settling in steps, or a few pages, has not).`,
    '    Fewer than 3 samples in the window: no verdict.',
    `  latency steady: after the warm-up, the client p99 pooled over the last third of the minutes (at least one) <= ${o.p99Factor} x the p99 pooled over the first third.`,
  ];
}

/** The whole report, plain text (stdout) or Markdown (--markdown): the method header if given, each phase, the definitions. */
export function fullReport(o: Opts, results: PhaseResult[], markdown: boolean, header: string[]): string {
  const parts: string[] = [];
  const block = (lines: string[]): string => (markdown ? ['```', ...lines, '```'] : lines).join('\n');
  if (header.length) parts.push(block(header));
  for (const r of results) parts.push('', phaseReport(o, r, markdown));
  parts.push('', block(definitions(o)));
  return parts.join('\n');
}
