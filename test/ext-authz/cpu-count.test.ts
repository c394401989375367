import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { availableCpus } from '../../ext-authz/src/cpu-count.js';

// The mount table lines a kernel writes, for a cgroup v2 host and a cgroup v1 (cpu,cpuacct) one.
const V2_MOUNT = '30 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate\n';
const V1_MOUNT = '32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:12 - cgroup cgroup rw,cpu,cpuacct\n';

/** A fake / with the given files (path → text), as /proc and /sys would show them. */
let roots: string[] = [];
function root(files: Record<string, string>): string {
  const r = mkdtempSync(join(tmpdir(), 'infergate-cpus-'));
  roots.push(r);
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(r, path)), { recursive: true });
    writeFileSync(join(r, path), text);
  }
  return r;
}
afterEach(() => {
  for (const r of roots) rmSync(r, { recursive: true, force: true });
  roots = [];
});

describe('the CPUs the server may use (the default of --workers)', () => {
  it('is the affinity when no cgroup limits the CPU time', () => {
    const r = root({ 'proc/self/mountinfo': V2_MOUNT, 'proc/self/cgroup': '0::/\n', 'sys/fs/cgroup/cpu.max': 'max 100000\n' });
    expect(availableCpus({ root: r, affinity: 8 })).toEqual({ cpus: 8, affinity: 8, quota: null, quotaFile: null });
  });

  it('is the cgroup v2 quota (cpu.max), rounded up, when it is below the affinity', () => {
    const r = root({ 'proc/self/mountinfo': V2_MOUNT, 'proc/self/cgroup': '0::/\n', 'sys/fs/cgroup/cpu.max': '150000 100000\n' });
    expect(availableCpus({ root: r, affinity: 8 })).toEqual({ cpus: 2, affinity: 8, quota: 1.5, quotaFile: join(r, 'sys/fs/cgroup/cpu.max') });
  });

  it('takes the tightest quota from the cgroup up to the root (a pod limit above the container)', () => {
    const r = root({
      'proc/self/mountinfo': V2_MOUNT,
      'proc/self/cgroup': '0::/kubepods/pod1/ctr\n',
      'sys/fs/cgroup/kubepods/pod1/ctr/cpu.max': 'max 100000\n',
      'sys/fs/cgroup/kubepods/pod1/cpu.max': '300000 100000\n',
      'sys/fs/cgroup/kubepods/cpu.max': '400000 100000\n',
    });
    expect(availableCpus({ root: r, affinity: 16 })).toMatchObject({ cpus: 3, quota: 3, quotaFile: join(r, 'sys/fs/cgroup/kubepods/pod1/cpu.max') });
  });

  it('is the affinity when that is lower than the quota (taskset, cpusets)', () => {
    const r = root({ 'proc/self/mountinfo': V2_MOUNT, 'proc/self/cgroup': '0::/\n', 'sys/fs/cgroup/cpu.max': '400000 100000\n' });
    expect(availableCpus({ root: r, affinity: 1 })).toMatchObject({ cpus: 1, quota: 4 });
  });

  it('never drops below one worker, whatever the quota', () => {
    const r = root({ 'proc/self/mountinfo': V2_MOUNT, 'proc/self/cgroup': '0::/\n', 'sys/fs/cgroup/cpu.max': '20000 100000\n' });
    expect(availableCpus({ root: r, affinity: 4 })).toMatchObject({ cpus: 1, quota: 0.2 });
  });

  it('reads a cgroup v1 quota (cpu.cfs_quota_us over cpu.cfs_period_us), the path taken from the mounted root', () => {
    const r = root({
      'proc/self/mountinfo': V1_MOUNT,
      'proc/self/cgroup': '12:cpu,cpuacct:/docker/abc\n11:memory:/docker/abc\n0::/\n',
      'sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_quota_us': '250000\n',
      'sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_period_us': '100000\n',
      'sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us': '-1\n',
      'sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us': '100000\n',
    });
    expect(availableCpus({ root: r, affinity: 8 })).toMatchObject({ cpus: 3, quota: 2.5 });
  });

  it('reads a cgroup v1 quota inside a cgroup namespace (the container sees its own cgroup as the root)', () => {
    const mount = '32 31 0:29 /docker/abc /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n';
    const r = root({
      'proc/self/mountinfo': mount,
      'proc/self/cgroup': '4:cpu:/docker/abc\n',
      'sys/fs/cgroup/cpu/cpu.cfs_quota_us': '100000\n',
      'sys/fs/cgroup/cpu/cpu.cfs_period_us': '100000\n',
      // A cgroup below ours that happens to have our name: not the process's, so not its quota.
      'sys/fs/cgroup/cpu/docker/abc/cpu.cfs_quota_us': '50000\n',
      'sys/fs/cgroup/cpu/docker/abc/cpu.cfs_period_us': '100000\n',
    });
    expect(availableCpus({ root: r, affinity: 8 })).toMatchObject({ cpus: 1, quota: 1, quotaFile: join(r, 'sys/fs/cgroup/cpu/cpu.cfs_quota_us') });
  });

  it('treats v1 "-1" (no limit) and unreadable or malformed files as no quota', () => {
    const r = root({
      'proc/self/mountinfo': V2_MOUNT + V1_MOUNT,
      'proc/self/cgroup': '12:cpu,cpuacct:/\n0::/\n',
      'sys/fs/cgroup/cpu.max': 'lots\n',
      'sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us': '-1\n',
      'sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us': '100000\n',
    });
    expect(availableCpus({ root: r, affinity: 6 })).toMatchObject({ cpus: 6, quota: null });
    expect(availableCpus({ root: root({}), affinity: 6 })).toMatchObject({ cpus: 6, quota: null });
  });

  it('on this machine is at most what os.availableParallelism() says', () => {
    const here = availableCpus();
    expect(here.affinity).toBe(availableParallelism());
    expect(here.cpus).toBeGreaterThanOrEqual(1);
    expect(here.cpus).toBeLessThanOrEqual(here.affinity);
  });
});
