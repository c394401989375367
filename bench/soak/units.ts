/** Bytes in a MiB: memory is sampled in bytes and reported and judged in MiB. */
export const MIB = 1024 * 1024;

/** Clock ticks per second in /proc/<pid>/stat and /proc/stat (USER_HZ on Linux). */
export const USER_HZ = 100;
