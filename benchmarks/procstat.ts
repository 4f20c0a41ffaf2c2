/** CPU and memory readings from /proc, for the benchmark's CPU-per-GB and RSS figures. */
import { readFileSync } from 'node:fs';
export { processRssMiB } from '../src/lab/proc.js';

const CLK_TCK = 100; // USER_HZ on Linux

/** CPU seconds (user + system) a process has used so far; 0 when it is gone. */
export function processCpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // after "pid (comm) ": field 3 is state
    return (Number(fields[11]) + Number(fields[12])) / CLK_TCK; // utime, stime (fields 14, 15 of the line)
  } catch {
    return 0;
  }
}

/** Busy and total jiffies of the whole machine, to turn two readings into a busy share. */
export function machineCpu(): { busy: number; total: number } {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const total = f.reduce((a, b) => a + b, 0);
  const idle = (f[3] ?? 0) + (f[4] ?? 0); // idle + iowait
  return { busy: total - idle, total };
}

/** Runs `work` and reports the machine's busy share (0-100 %) and the CPU seconds `pids` used meanwhile. */
export async function sampleCpu<T>(pids: readonly number[], work: () => Promise<T>): Promise<{ result: T; machineBusyPercent: number; processCpuSeconds: number }> {
  const m0 = machineCpu();
  const p0 = pids.reduce((s, p) => s + processCpuSeconds(p), 0);
  const result = await work();
  const m1 = machineCpu();
  const p1 = pids.reduce((s, p) => s + processCpuSeconds(p), 0);
  const total = m1.total - m0.total;
  return { result, machineBusyPercent: total > 0 ? (100 * (m1.busy - m0.busy)) / total : 0, processCpuSeconds: p1 - p0 };
}
