/**
 * Removing a lab: what `Lab.destroy` does for a lab this process built, and what `removeLab` does for one another
 * process left up (demo --keep, then demo --down). Processes go by PID (never by name: other labs may run beside
 * this one), then the namespaces (which takes their links with them).
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { waitFor } from './wait.js';

const execFileP = promisify(execFile);

/** A lab as another process sees it: enough to tear it down later (`removeLab`). */
export interface LabRecord {
  readonly id: string;
  readonly namespaces: readonly string[];
  readonly processes: readonly { readonly pid: number; readonly cmdline: string }[];
  /** The routers' state directories (snapshots), under the system's temp dir. */
  readonly stateRoot?: string;
}

/** Stops `pids` and every process inside `namespaces`, then deletes the namespaces in the order given. */
export async function teardown(namespaces: readonly string[], pids: readonly number[]): Promise<void> {
  const inside = await Promise.all(namespaces.map((ns) => namespacePids(ns)));
  const all = [...new Set([...pids, ...inside.flat()])];
  signal(all, 'SIGTERM');
  await waitFor(() => !all.some(alive), { timeoutMs: 5000, what: 'lab processes to exit' }).catch(() => signal(all.filter(alive), 'SIGKILL'));
  for (const ns of namespaces) await execFileP('ip', ['netns', 'del', ns], { timeout: 10_000 }).catch(() => undefined);
}

/**
 * Tears down a lab this process did not build (demo --down): the namespaces named `vxr<id>-…`, the recorded processes
 * (only while their command line is still the recorded one: a PID may have been reused) and anything else running in
 * those namespaces. Returns the namespaces removed.
 */
export async function removeLab(id: string, record?: LabRecord): Promise<string[]> {
  const { stdout } = await execFileP('ip', ['-j', 'netns', 'list'], { timeout: 10_000 });
  const listed = stdout.trim() === '' ? [] : (JSON.parse(stdout) as { name: string }[]).map((n) => n.name);
  const namespaces = listed.filter((n) => n.startsWith(`vxr${id}-`));
  const pids = (record?.processes ?? []).filter((p) => cmdline(p.pid) === p.cmdline).map((p) => p.pid);
  await teardown(namespaces, pids);
  return namespaces;
}

/** The command line of a process ('' when it is gone), to recognise it again later. */
export function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
  } catch {
    return '';
  }
}

async function namespacePids(ns: string): Promise<number[]> {
  const r = await execFileP('ip', ['netns', 'pids', ns], { timeout: 10_000 }).catch(() => ({ stdout: '' }));
  return r.stdout.split('\n').filter((l) => /^\d+$/.test(l)).map(Number);
}

function signal(pids: readonly number[], sig: NodeJS.Signals): void {
  for (const pid of pids) {
    try {
      process.kill(pid, sig);
    } catch {
      // already gone
    }
  }
}

/** Running (a zombie, dead but not yet reaped by its parent, counts as gone). */
function alive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}
