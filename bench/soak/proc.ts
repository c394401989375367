import { readdirSync, readFileSync } from 'node:fs';

/** VmRSS of a process from /proc/<pid>/status, bytes. */
export function rssBytes(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS in /proc/${pid}/status`);
  return Number(m[1]) * 1024;
}

/** The pid of our own child process whose command (comm) is `comm` and whose command line contains `arg`. */
export function childPid(comm: string | null, arg: string): number {
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const s = readFileSync(`/proc/${d}/stat`, 'utf8');
      const name = s.slice(s.indexOf('(') + 1, s.lastIndexOf(')'));
      const ppid = Number(s.slice(s.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === process.pid && (comm === null || name === comm) && readFileSync(`/proc/${d}/cmdline`, 'utf8').includes(arg)) return Number(d);
    } catch { /* gone meanwhile */ }
  }
  throw new Error(`no child process ${comm} with ${arg} found`);
}

/** The 1, 5 and 15 minute load averages from /proc/loadavg. */
export const loadavg = (): string => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
