import { MIB } from './units.js';

/** Number formats for the report: '-' for a figure that could not be had (NaN). */
export const f1 = (n: number): string => (Number.isFinite(n) ? n.toFixed(1) : '-');
export const f2 = (n: number): string => (Number.isFinite(n) ? n.toFixed(2) : '-');
export const f3 = (n: number): string => (Number.isFinite(n) ? n.toFixed(3) : '-');
export const f0 = (n: number): string => (Number.isFinite(n) ? Math.round(n).toString() : '-');
export const mib = (b: number | undefined): string => f1((b ?? NaN) / MIB);
/** Seconds as m:ss. */
export const clock = (s: number): string => `${Math.floor(s / 60)}:${String(Math.round(s % 60)).padStart(2, '0')}`;

/** A table, as Markdown or as aligned plain text (first column left, the others right). */
export function table(headers: string[], rows: string[][], markdown: boolean): string {
  if (markdown) {
    const line = (cells: string[]): string => `| ${cells.join(' | ')} |`;
    return [line(headers), line(headers.map((_, i) => (i === 0 ? '---' : '---:'))), ...rows.map(line)].join('\n');
  }
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(headers), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}
