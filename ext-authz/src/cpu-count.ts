import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';

/** How many CPUs this process may use, and what limited it. */
export interface CpuCount {
  readonly cpus: number;
  /** CPUs the scheduler lets the process run on (affinity, as os.availableParallelism() reports it). */
  readonly affinity: number;
  /** The tightest cgroup CPU quota found, in CPUs (e.g. 1.5), or null when there is none. */
  readonly quota: number | null;
  /** The file the quota was read from, for the start-up log. */
  readonly quotaFile: string | null;
}

export interface CpuSources {
  /** Prefix for /proc and /sys, so tests can feed their own files. */
  readonly root?: string;
  readonly affinity?: number;
}

interface Mount {
  readonly root: string;
  readonly point: string;
}

function read(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return null;
  }
}

/** Mount points of cgroup v2 and of the v1 hierarchy that has the cpu controller, from /proc/self/mountinfo. */
function cgroupMounts(mountinfo: string): { v2: Mount | null; v1cpu: Mount | null } {
  let v2: Mount | null = null;
  let v1cpu: Mount | null = null;
  for (const line of mountinfo.split('\n')) {
    // id parent major:minor root mount-point options [optional fields] - fstype source super-options
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    const left = line.slice(0, sep).split(' ');
    const [fstype, , superOpts = ''] = line.slice(sep + 3).split(' ');
    const m = { root: unescapeMount(left[3] ?? '/'), point: unescapeMount(left[4] ?? '') };
    if (fstype === 'cgroup2') v2 ??= m;
    else if (fstype === 'cgroup' && superOpts.split(',').includes('cpu')) v1cpu ??= m;
  }
  return { v2, v1cpu };
}

/** mountinfo writes space, tab, newline and backslash as octal escapes. */
function unescapeMount(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/** The process's cgroup path in a hierarchy: v2 is the "0::" line, v1 the line whose controllers include cpu. */
function cgroupPath(procCgroup: string, v2: boolean): string | null {
  for (const line of procCgroup.split('\n')) {
    const m = /^(\d+):([^:]*):(.*)$/.exec(line);
    if (!m) continue;
    if (v2 ? m[1] === '0' && m[2] === '' : m[2]!.split(',').includes('cpu')) return m[3]!;
  }
  return null;
}

/**
 * The directories from the process's own cgroup up to the mount point: a
 * parent's quota limits every cgroup below it, so the tightest one counts.
 */
function cgroupDirs(root: string, mount: Mount, path: string): string[] {
  // Without a cgroup namespace the path is from the hierarchy's root, which may be below the mounted root.
  const rel = mount.root !== '/' && path.startsWith(mount.root) ? path.slice(mount.root.length) : path;
  const top = trimSlash(join(root, mount.point));
  const dirs: string[] = [];
  for (let d = trimSlash(join(top, rel)); d.startsWith(top); d = dirname(d)) {
    dirs.push(d);
    if (d === top) break;
  }
  return dirs;
}

function trimSlash(p: string): string {
  return p.length > 1 ? p.replace(/\/+$/, '') : p;
}

/** cgroup v2 cpu.max: "max 100000" (no limit) or "QUOTA PERIOD" in microseconds. */
function v2Quota(dir: string): number | null {
  const text = read(join(dir, 'cpu.max'));
  const m = text !== null ? /^(max|\d+) (\d+)\s*$/.exec(text) : null;
  if (!m || m[1] === 'max' || Number(m[2]) <= 0) return null;
  return Number(m[1]) / Number(m[2]);
}

/** cgroup v1: cpu.cfs_quota_us (-1 for no limit) over cpu.cfs_period_us. */
function v1Quota(dir: string): number | null {
  const quota = read(join(dir, 'cpu.cfs_quota_us'))?.trim();
  const period = read(join(dir, 'cpu.cfs_period_us'))?.trim();
  if (quota === undefined || period === undefined || !/^\d+$/.test(quota) || !/^\d+$/.test(period) || Number(period) === 0) return null;
  return Number(quota) / Number(period);
}

/**
 * The CPUs this process may use: its affinity, lowered by a cgroup CPU
 * quota (v2 cpu.max, or v1 cpu.cfs_quota_us) anywhere from its own cgroup up
 * to the hierarchy's root. A fractional quota rounds up (1.5 CPUs → 2), as
 * Go and the JVM do, so the quota's CPU time is used; never less than 1.
 */
export function availableCpus(o: CpuSources = {}): CpuCount {
  const root = o.root ?? '/';
  const affinity = Math.max(1, o.affinity ?? availableParallelism());
  const { v2, v1cpu } = cgroupMounts(read(join(root, 'proc/self/mountinfo')) ?? '');
  const procCgroup = read(join(root, 'proc/self/cgroup')) ?? '';
  const found: Array<{ quota: number; file: string }> = [];
  const p2 = v2 !== null ? cgroupPath(procCgroup, true) : null;
  if (v2 !== null && p2 !== null) for (const d of cgroupDirs(root, v2, p2)) found.push({ quota: v2Quota(d) ?? 0, file: join(d, 'cpu.max') });
  const p1 = v1cpu !== null ? cgroupPath(procCgroup, false) : null;
  if (v1cpu !== null && p1 !== null) for (const d of cgroupDirs(root, v1cpu, p1)) found.push({ quota: v1Quota(d) ?? 0, file: join(d, 'cpu.cfs_quota_us') });
  const tightest = found.filter((f) => f.quota > 0).sort((a, b) => a.quota - b.quota)[0];
  if (tightest === undefined) return { cpus: affinity, affinity, quota: null, quotaFile: null };
  const cpus = Math.max(1, Math.min(affinity, Math.ceil(tightest.quota - 1e-9)));
  return { cpus, affinity, quota: tightest.quota, quotaFile: tightest.file };
}
