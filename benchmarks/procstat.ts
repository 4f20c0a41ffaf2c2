/** CPU and memory readings from /proc, for the benchmark's CPU-per-GB and RSS figures. */
import { readdirSync, readFileSync } from 'node:fs';
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

/** Context switches (voluntary, nonvoluntary) of every thread of a process so far; zeros when it is gone. */
export function processCtxSwitches(pid: number): { voluntary: number; nonvoluntary: number } {
  const sum = { voluntary: 0, nonvoluntary: 0 };
  let tids: string[] = [];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return sum;
  }
  // /proc/<pid>/status counts the main thread only; the engine's threads are tasks of their own.
  for (const tid of tids) {
    try {
      const status = readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8');
      sum.voluntary += Number(/^voluntary_ctxt_switches:\s+(\d+)/m.exec(status)?.[1] ?? 0);
      sum.nonvoluntary += Number(/^nonvoluntary_ctxt_switches:\s+(\d+)/m.exec(status)?.[1] ?? 0);
    } catch {
      // the thread ended between the listing and the read
    }
  }
  return sum;
}

/** Whole-machine counters that show wake-ups: context switches (/proc/stat ctxt) and rescheduling / function-call
 * IPIs (/proc/interrupts RES, CAL, summed over CPUs), and CPU seconds busy (/proc/stat, all CPUs). */
export function machineWakeups(): { ctxt: number; res: number; cal: number; busySeconds: number } {
  const stat = readFileSync('/proc/stat', 'utf8');
  const ctxt = Number(/^ctxt\s+(\d+)/m.exec(stat)?.[1] ?? 0);
  const irq = readFileSync('/proc/interrupts', 'utf8');
  const row = (name: string): number => {
    const line = irq.split('\n').find((l) => l.trimStart().startsWith(`${name}:`));
    return line ? line.trim().split(/\s+/).slice(1).filter((x) => /^\d+$/.test(x)).map(Number).reduce((a, b) => a + b, 0) : 0;
  };
  return { ctxt, res: row('RES'), cal: row('CAL'), busySeconds: machineCpu().busy / CLK_TCK };
}

/** What a piece of work cost in wake-ups and CPU: router threads' context switches, the machine's, its IPIs, and
 * the machine's busy CPU seconds. Differences of the readings before and after. */
export interface WakeupCost {
  routerVoluntary: number;
  routerNonvoluntary: number;
  machineCtxt: number;
  res: number;
  cal: number;
  machineCpuSeconds: number;
}

export async function sampleWakeups<T>(pids: readonly number[], work: () => Promise<T>): Promise<{ result: T; cost: WakeupCost }> {
  const r0 = pids.map(processCtxSwitches);
  const m0 = machineWakeups();
  const result = await work();
  const m1 = machineWakeups();
  const r1 = pids.map(processCtxSwitches);
  const sum = (xs: { voluntary: number; nonvoluntary: number }[], k: 'voluntary' | 'nonvoluntary'): number => xs.reduce((s, x) => s + x[k], 0);
  return {
    result,
    cost: {
      routerVoluntary: sum(r1, 'voluntary') - sum(r0, 'voluntary'),
      routerNonvoluntary: sum(r1, 'nonvoluntary') - sum(r0, 'nonvoluntary'),
      machineCtxt: m1.ctxt - m0.ctxt,
      res: m1.res - m0.res,
      cal: m1.cal - m0.cal,
      machineCpuSeconds: m1.busySeconds - m0.busySeconds,
    },
  };
}
