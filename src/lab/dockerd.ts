/**
 * A real dockerd inside a lab host (issue 16's proof): Debian's docker.io, with all its state in a directory of the
 * lab (data root, exec root, API socket, pid file) and a private /run, so two lab hosts each have their own and
 * nothing of the machine's Docker (if any) is touched. The plugin directory dockerd searches (/run/docker/plugins)
 * is a directory of the lab bound into that private /run, where the host's router puts its plugin socket.
 *
 * dockerd runs under nsenter into the host's network namespace, not `ip netns exec` (which remounts /sys and hides
 * the cgroups dockerd needs). Its containers live in network namespaces of Docker's own, which the lab's teardown
 * does not know: `stop()` removes them through dockerd first, then stops dockerd by PID, unmounts what it mounted
 * and removes its cgroup.
 */
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, rmdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { ExecResult, Host } from './lab.js';
import { waitFor } from './wait.js';

const execFileP = promisify(execFile);
const BUSYBOX = '/bin/busybox';
export const BUSYBOX_IMAGE = 'vxr-busybox:local';
/** Debian's docker-compose (1.29; scripts/setup.sh installs it). No `docker compose` v2 plugin comes with docker.io. */
export const COMPOSE = '/usr/bin/docker-compose';

/** Why compose cannot run against a lab dockerd here, or undefined. */
export function composeSkipReason(): string | undefined {
  return existsSync(COMPOSE) ? undefined : "docker-compose is not installed (scripts/setup.sh installs Debian's docker-compose)";
}
/** dockerd's cgroup parent: its containers' cgroups, removed with it. */
const cgroupOf = (host: Host): string => `vxr-dockerd-${host.ns}`;

/** Why dockerd labs cannot run here, or undefined. */
export function dockerdSkipReason(): string | undefined {
  if (spawnSync('dockerd', ['--version']).status !== 0) return "dockerd is not installed (npm test installs Debian's docker.io as root)";
  if (!existsSync(BUSYBOX)) return 'busybox-static is not installed (npm test installs it as root)';
  return undefined;
}

export class LabDockerd {
  private constructor(
    readonly host: Host,
    readonly dir: string,
    /** Where the host's router puts its plugin socket: dockerd sees it as /run/docker/plugins. */
    readonly pluginDir: string,
    private child: ChildProcess,
  ) {}

  get socket(): string {
    return join(this.dir, 'docker.sock');
  }

  get pluginSocket(): string {
    return join(this.pluginDir, 'vxlan-router.sock');
  }


  /** Starts dockerd in `host` and imports the busybox image (made from Debian's busybox-static: no registry here). */
  static async start(host: Host): Promise<LabDockerd> {
    const dir = mkdtempSync(join(tmpdir(), `vxr-dockerd-${host.ns}-`));
    const pluginDir = join(dir, 'plugins');
    mkdirSync(pluginDir);
    const d = new LabDockerd(host, dir, pluginDir, LabDockerd.spawn(host, dir));
    try {
      await d.ready();
      const rootfs = join(dir, 'rootfs');
      mkdirSync(join(rootfs, 'bin'), { recursive: true });
      copyFileSync(BUSYBOX, join(rootfs, 'bin', 'busybox'));
      for (const a of ['sh', 'ping', 'ip', 'sleep', 'cat', 'httpd', 'wget', 'nslookup', 'hostname']) symlinkSync('busybox', join(rootfs, 'bin', a));
      const tar = spawn('tar', ['-C', rootfs, '-c', '.'], { stdio: ['ignore', 'pipe', 'inherit'] });
      const imp = spawn('docker', ['-H', `unix://${d.socket}`, 'import', '-', BUSYBOX_IMAGE], { stdio: [tar.stdout, 'ignore', 'pipe'] });
      let err = '';
      imp.stderr!.on('data', (b: Buffer) => (err += String(b)));
      const code = await new Promise<number | null>((r) => imp.once('exit', r));
      if (code !== 0) throw new Error(`docker import: ${err.trim()}`);
      return d;
    } catch (err) {
      await d.stop();
      throw err;
    }
  }

  private static spawn(host: Host, dir: string): ChildProcess {
    writeFileSync(join(dir, 'daemon.json'), '{}');
    const log = openSync(join(dir, 'dockerd.log'), 'a');
    // A private /run (tmpfs) with the lab's plugin directory bound where dockerd looks for plugins.
    const script =
      'mount -t tmpfs -o mode=755 vxr-run /run && mkdir -p /run/docker/plugins && mount --bind "$1/plugins" /run/docker/plugins && ' +
      'exec dockerd --config-file "$1/daemon.json" --data-root "$1/docker" --exec-root "$1/exec" --pidfile "$1/docker.pid" ' +
      '--host "unix://$1/docker.sock" --storage-driver vfs --bridge=none --cgroup-parent "/$2"';
    try {
      return spawn('nsenter', [`--net=/run/netns/${host.ns}`, 'unshare', '--mount', '--propagation', 'private', 'sh', '-c', script, 'sh', dir, cgroupOf(host)], {
        stdio: ['ignore', log, log],
        // A process group of its own: a Ctrl-C on the demo's terminal reaches the demo, which removes the
        // containers through dockerd before stopping it (by PID).
        detached: true,
      });
    } finally {
      closeSync(log);
    }
  }

  private async ready(): Promise<void> {
    await waitFor(async () => (await this.docker(['info', '--format', '{{.ID}}']).then(() => true, () => false)) || this.child.exitCode !== null, {
      timeoutMs: 60_000,
      intervalMs: 300,
      what: `dockerd in ${this.host.name}`,
    });
    if (this.child.exitCode !== null) throw new Error(`dockerd in ${this.host.name} exited: ${this.log().slice(-2000)}`);
  }

  /** The end of dockerd's log, for a failing test's message. */
  log(): string {
    try {
      return readFileSync(join(this.dir, 'dockerd.log'), 'utf8');
    } catch {
      return '';
    }
  }

  /** `docker …` against this dockerd, bounded in time. */
  async docker(args: readonly string[], timeoutMs = 60_000): Promise<ExecResult> {
    try {
      const { stdout, stderr } = await execFileP('docker', ['-H', `unix://${this.socket}`, ...args], { timeout: timeoutMs, maxBuffer: 16 << 20 });
      return { stdout, stderr };
    } catch (err) {
      const e = err as { stderr?: string; message: string };
      throw new Error(`docker ${args.join(' ')}: ${e.stderr?.trim() || e.message}`);
    }
  }

  /**
   * `docker-compose …` (Debian's compose 1.29, a Python client of dockerd's API) against this dockerd: DOCKER_HOST
   * points it at this dockerd's socket, which the root namespace reaches as a file. Bounded in time.
   */
  async compose(args: readonly string[], timeoutMs = 60_000): Promise<ExecResult> {
    try {
      const env = { ...process.env, DOCKER_HOST: `unix://${this.socket}`, COMPOSE_INTERACTIVE_NO_CLI: '1' };
      const { stdout, stderr } = await execFileP(COMPOSE, args, { timeout: timeoutMs, maxBuffer: 16 << 20, env });
      return { stdout, stderr };
    } catch (err) {
      const e = err as { stderr?: string; message: string };
      throw new Error(`docker-compose ${args.join(' ')}: ${e.stderr?.trim() || e.message}`);
    }
  }

  private pid(): number | undefined {
    try {
      return Number(readFileSync(join(this.dir, 'docker.pid'), 'utf8').trim()) || undefined;
    } catch {
      return undefined;
    }
  }

  /** Stops dockerd (SIGTERM; its containers stop with it unless live-restore) and starts it again on the same state. */
  async restart(): Promise<void> {
    await this.stopDaemon();
    this.child = LabDockerd.spawn(this.host, this.dir);
    await this.ready();
  }

  private async stopDaemon(): Promise<void> {
    const pid = this.pid();
    if (pid !== undefined) {
      try {
        process.kill(pid, 'SIGTERM');
      } catch {
        /* gone */
      }
    }
    const exited = this.child.exitCode !== null || this.child.signalCode !== null ? Promise.resolve() : new Promise<void>((r) => this.child.once('exit', () => r()));
    let timer: NodeJS.Timeout | undefined;
    // Cleared once dockerd is gone: a pending 20 s timer kept the demo's (and a test's) process alive that long.
    await Promise.race([exited, new Promise((r) => (timer = setTimeout(r, 20_000)))]);
    clearTimeout(timer);
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
    rmSync(join(this.dir, 'docker.pid'), { force: true });
  }

  /** Removes its containers, stops dockerd, unmounts and removes everything it had. Safe to call twice. */
  async stop(): Promise<void> {
    const ids = (await this.docker(['ps', '-aq'], 20_000).catch(() => ({ stdout: '' }))).stdout.split('\n').filter(Boolean);
    if (ids.length > 0) await this.docker(['rm', '-f', ...ids], 60_000).catch(() => undefined);
    await this.stopDaemon();
    const mounts = readFileSync('/proc/mounts', 'utf8')
      .split('\n')
      .map((l) => l.split(' ')[1] ?? '')
      .filter((m) => m.startsWith(this.dir))
      .sort()
      .reverse();
    for (const m of mounts) spawnSync('umount', ['-l', m]);
    rmSync(this.dir, { recursive: true, force: true });
    const cg = `/sys/fs/cgroup/${cgroupOf(this.host)}`;
    if (existsSync(cg)) {
      const dirs = spawnSync('find', [cg, '-depth', '-type', 'd'], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean);
      for (const d of dirs) {
        try {
          rmdirSync(d);
        } catch {
          /* still in use: left for the kernel */
        }
      }
    }
  }
}
