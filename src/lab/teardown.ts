/**
 * Removing a lab: what `Lab.destroy` does for a lab this process built, and what `removeLab` does for one another
 * process left up (demo --keep, then demo --down). Processes go by PID (never by name: other labs may run beside
 * this one), then the namespaces (which takes their links with them), then the lab's directory under the temp dir.
 */
import { execFile } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname } from 'node:path';
import { promisify } from 'node:util';
import { waitFor } from './wait.js';

const execFileP = promisify(execFile);

/** A lab as another process sees it: enough to tear it down later (`removeLab`). */
export interface LabRecord {
  readonly id: string;
  readonly namespaces: readonly string[];
  readonly processes: readonly { readonly pid: number; readonly cmdline: string }[];
  /** The lab's directory under the system's temp dir: its routers' control sockets and state dirs. */
  readonly dir?: string;
}

/** The prefix of a lab's directory name (`mkdtemp` adds a random tail). */
export function labDirPrefix(id: string): string {
  return `vxr-lab-${id}-`;
}

/**
 * Stops `pids` and every process inside `namespaces` (SIGTERM, SIGKILL after 5 s), deletes the namespaces in the
 * order given, then removes `dir`. Removing the directory last is what makes it safe: a router that still ran
 * could write its snapshot there again.
 */
export async function teardown(lab: { readonly namespaces: readonly string[]; readonly pids: readonly number[]; readonly dir?: string | undefined }): Promise<void> {
  const inside = await Promise.all(lab.namespaces.map((ns) => namespacePids(ns)));
  const all = [...new Set([...lab.pids, ...inside.flat()])];
  signal(all, 'SIGTERM');
  await waitFor(() => !all.some(alive), { timeoutMs: 5000, what: 'lab processes to exit' }).catch(() => signal(all.filter(alive), 'SIGKILL'));
  for (const ns of lab.namespaces) await execFileP('ip', ['netns', 'del', ns], { timeout: 10_000 }).catch(() => undefined);
  if (lab.dir !== undefined) rmSync(lab.dir, { recursive: true, force: true });
}

/**
 * Tears down a lab this process did not build (demo --down): the namespaces named `vxr<id>-…`, the recorded processes
 * (only while their command line is still the recorded one: a PID may have been reused), anything else running in
 * those namespaces, and its directory (only one this lab's id names, in the temp dir: a record is a file anyone
 * could edit). Returns the namespaces removed.
 */
export async function removeLab(id: string, record?: LabRecord): Promise<string[]> {
  const { stdout } = await execFileP('ip', ['-j', 'netns', 'list'], { timeout: 10_000 });
  const listed = stdout.trim() === '' ? [] : (JSON.parse(stdout) as { name: string }[]).map((n) => n.name);
  const namespaces = listed.filter((n) => n.startsWith(`vxr${id}-`));
  const pids = (record?.processes ?? []).filter((p) => cmdline(p.pid) === p.cmdline).map((p) => p.pid);
  const dir = record?.dir;
  const ownDir = dir !== undefined && dirname(dir) === tmpdir() && basename(dir).startsWith(labDirPrefix(id));
  await teardown({ namespaces, pids, dir: ownDir ? dir : undefined });
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
