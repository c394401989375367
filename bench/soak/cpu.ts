import { readFileSync } from 'node:fs';
import { now } from './clock.js';
import { USER_HZ } from './units.js';

/** utime + stime of a process and all its threads, in clock ticks (USER_HZ, 100). */
function cpuTicks(pid: number): number {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return Number(f[11]) + Number(f[12]);
  } catch {
    return NaN;
  }
}

/** Busy ticks of all CPUs together (everything but idle and iowait). */
function busyTicks(): number {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  return (f[0] ?? 0) + (f[1] ?? 0) + (f[2] ?? 0) + (f[5] ?? 0) + (f[6] ?? 0) + (f[7] ?? 0);
}

/** The machine's busy ticks and each watched process's ticks at one instant. */
export interface CpuMark { busy: number; procs: number[]; at: number }

export function cpuMark(pids: readonly number[]): CpuMark {
  return { busy: busyTicks(), procs: pids.map(cpuTicks), at: now() };
}

/** % of one CPU used between two marks by each named process (in the marks' order), and by everything else as "others". */
export function cpuBetween(names: readonly string[], a: CpuMark, b: CpuMark): Record<string, number> {
  const secs = (b.at - a.at) / 1000;
  const pc = (ticks: number): number => (ticks / USER_HZ / secs) * 100;
  const out: Record<string, number> = {};
  let ours = 0;
  names.forEach((name, i) => {
    const d = (b.procs[i] ?? NaN) - (a.procs[i] ?? NaN);
    out[name] = pc(d);
    if (Number.isFinite(d)) ours += d;
  });
  out.others = Math.max(0, pc(b.busy - a.busy - ours));
  return out;
}
