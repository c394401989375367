/** A full (mark-compact) GC as node --trace-gc reports it: when, and the heap before and after, MB. */
export interface FullGc { at: number; before: number; after: number; committed: number }

const MARK_COMPACT = /Mark-Compact(?: \([a-z ]+\))? ([\d.]+) \(([\d.]+)\) -> ([\d.]+) \(([\d.]+)\) MB/;

/** The full GC a --trace-gc line reports, stamped `at`; null for any other line. */
export function fullGc(line: string, at: number): FullGc | null {
  const gc = MARK_COMPACT.exec(line);
  return gc ? { at, before: Number(gc[1]), after: Number(gc[3]), committed: Number(gc[4]) } : null;
}

/** Whether a line is one of --trace-gc's own (they start with [pid:isolate]), such as a scavenge. */
export const isTraceGcLine = (line: string): boolean => /\[\d+:0x[0-9a-f]+\]/.test(line);
