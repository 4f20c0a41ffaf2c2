/** A running process's memory and file descriptors from /proc, for the fuzz, the soak and the benchmarks. */
import { readdirSync, readFileSync } from 'node:fs';

/** VmRSS of a process in MiB (0 when it is gone). */
export function processRssMiB(pid: number): number {
  try {
    const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : 0;
  } catch {
    return 0;
  }
}

/** How many fds a process has open (0 when it is gone). */
export function fdCount(pid: number): number {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return 0;
  }
}

/** /proc/PID/smaps_rollup in MiB: resident in all, and of it anonymous (heap, stacks, malloc arenas, V8) (zeros when gone). */
export function processSmapsMiB(pid: number): { rss: number; anonymous: number } {
  try {
    const text = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
    const kb = (field: string): number => Number(new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(text)?.[1] ?? 0);
    return { rss: kb('Rss') / 1024, anonymous: kb('Anonymous') / 1024 };
  } catch {
    return { rss: 0, anonymous: 0 };
  }
}
