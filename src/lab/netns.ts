/**
 * A network lab in namespaces, for the tests, `npm run demo` and the benchmarks. Everything it creates lives in
 * namespaces named `vxr<id>-<name>` (id = PID + counter), so nothing touches the root namespace, two labs never
 * collide, and `destroy()` removes all of it (deleting a namespace removes its links) and kills what it started.
 *
 *   [c1] eth0 ─veth─ c1 ┐                                   ┌ c2 ─veth─ eth0 [c2]
 *                       br0 ── TAP (vxlan-router) or vx0     br0 ── ...
 *                  [h1] eth0 198.51.100.1 ─veth─ h1 ┐       ┌ h2 ─veth─ eth0 198.51.100.2 [h2]
 *                                                   sw (bridge) [switch]
 *
 * Underlay 198.51.100.0/24, overlay 198.18.0.0/15 (the project's test ranges).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);

/** dist/cli.js, from src/lab (tests under tap) or dist/lab (demo, benchmarks). */
export const CLI_PATH = fileURLToPath(new URL('../../dist/cli.js', import.meta.url));
export const VNI = 42;
export const UNDERLAY_MTU = 1500;

let labCounter = 0;

export interface Host {
  readonly name: string;
  readonly ns: string;
  readonly underlayIp: string;
  readonly underlayMtu: number;
}

export interface Container {
  readonly name: string;
  readonly ns: string;
  readonly ip: string;
  readonly mac: string;
}

export interface ExecResult {
  readonly stdout: string;
  readonly stderr: string;
}

export type EngineName = 'native' | 'js';

export class RouterProcess {
  private readonly lines: string[] = [];
  private readonly waiters: { match: (l: string) => boolean; resolve: (l: string) => void }[] = [];
  readonly exited: Promise<number | null>;
  stderr = '';

  /** PID of the router itself (`ip netns exec` execs it, so this is the node process). */
  get pid(): number {
    return this.child.pid ?? -1;
  }

  constructor(readonly child: ChildProcess) {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      this.lines.push(line);
      const i = this.waiters.findIndex((w) => w.match(line));
      if (i >= 0) this.waiters.splice(i, 1)[0]!.resolve(line);
    });
    child.stderr!.on('data', (d: Buffer) => (this.stderr += d.toString()));
    this.exited = once(child, 'exit').then(([code]) => code as number | null);
  }

  /** Resolves with the first (future or past, if `past`) stdout line that matches, or rejects on exit/timeout. */
  nextLine(match: (l: string) => boolean, timeoutMs: number, past = false): Promise<string> {
    const seen = past ? this.lines.find(match) : undefined;
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`router: no matching line in ${timeoutMs} ms; stderr: ${this.stderr}`)), timeoutMs);
      void this.exited.then((code) => {
        clearTimeout(timer);
        reject(new Error(`router exited (${code}): ${this.stderr.trim()}`));
      });
      this.waiters.push({ match, resolve: (l) => (clearTimeout(timer), resolve(l)) });
    });
  }

  /** The peers of each VNI in the table the router forwards with now (printed on SIGUSR1 after the counters). */
  async peers(): Promise<Record<number, string[]>> {
    const line = this.nextLine((l) => l.startsWith('table '), 5000);
    this.child.kill('SIGUSR1');
    const t = JSON.parse((await line).slice('table '.length)) as { vnis: { vni: number; peers: string[] }[] };
    return Object.fromEntries(t.vnis.map((v) => [v.vni, [...v.peers].sort()]));
  }

  /** The router's counters (SIGUSR1 makes it print them as one JSON line). */
  async counters(): Promise<Record<string, number>> {
    const line = this.nextLine((l) => l.startsWith('counters '), 5000);
    this.child.kill('SIGUSR1');
    return JSON.parse((await line).slice('counters '.length)) as Record<string, number>;
  }

  /** SIGTERM, then SIGKILL if it has not exited in 5 s. Resolves with the exit code. */
  async stop(): Promise<number | null> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return this.child.exitCode;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 5000);
    const code = await this.exited;
    clearTimeout(timer);
    return code;
  }
}

export class Lab {
  readonly id: string;
  readonly hosts = new Map<string, Host>();
  private readonly namespaces: string[] = [];
  private readonly processes: ChildProcess[] = [];
  private switchNs: Promise<string> | undefined;
  private destroyed = false;

  constructor(id = `${process.pid}${labCounter++}`) {
    this.id = id;
  }

  nsName(name: string): string {
    return `vxr${this.id}-${name}`;
  }

  /** Runs a command inside a namespace (the root one when ns is ''), bounded in time. */
  async exec(ns: string, cmd: string, args: string[], timeoutMs = 30_000): Promise<ExecResult> {
    const argv = ns === '' ? [cmd, ...args] : ['ip', 'netns', 'exec', ns, cmd, ...args];
    try {
      const { stdout, stderr } = await execFileP(argv[0]!, argv.slice(1), { timeout: timeoutMs, maxBuffer: 64 << 20 });
      return { stdout, stderr };
    } catch (err) {
      const e = err as { stderr?: string; message: string };
      throw new Error(`${argv.join(' ')}: ${e.stderr?.trim() || e.message}`);
    }
  }

  /** Starts a long-running command in a namespace; destroy() kills it by PID. */
  spawn(ns: string, cmd: string, args: string[]): ChildProcess {
    const child = spawn('ip', ['netns', 'exec', ns, cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.processes.push(child);
    return child;
  }

  private async addNs(name: string): Promise<string> {
    const ns = this.nsName(name);
    await this.exec('', 'ip', ['netns', 'add', ns]);
    this.namespaces.push(ns);
    await this.exec('', 'ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    return ns;
  }

  /** The underlay switch, made once even when hosts are added concurrently. */
  private ensureSwitch(): Promise<string> {
    this.switchNs ??= (async () => {
      const ns = await this.addNs('switch');
      await this.exec('', 'ip', ['-n', ns, 'link', 'add', 'sw', 'type', 'bridge']);
      await this.exec('', 'ip', ['-n', ns, 'link', 'set', 'sw', 'up']);
      return ns;
    })();
    return this.switchNs;
  }

  /** Gives the underlay switch itself an address (for a service every host reaches, e.g. etcd); returns its namespace. */
  async addSwitchAddress(ip: string): Promise<string> {
    const sw = await this.ensureSwitch();
    await this.exec('', 'ip', ['-n', sw, 'addr', 'add', `${ip}/24`, 'dev', 'sw']);
    return sw;
  }

  /** A host namespace on the underlay switch with `eth0` = underlayIp (/24, or /64 for IPv6) and a bridge `br0`. */
  async addHost(name: string, underlayIp: string, opts: { mtu?: number; bridge?: boolean } = {}): Promise<Host> {
    const sw = await this.ensureSwitch();
    const ns = await this.addNs(name);
    const mtu = String(opts.mtu ?? UNDERLAY_MTU);
    await this.exec('', 'ip', ['link', 'add', 'eth0', 'netns', ns, 'mtu', mtu, 'type', 'veth', 'peer', 'name', name, 'netns', sw, 'mtu', mtu]);
    await this.exec('', 'ip', ['-n', sw, 'link', 'set', name, 'master', 'sw', 'up']);
    const v6 = underlayIp.includes(':');
    // nodad: the address is usable at once instead of after duplicate address detection.
    await this.exec('', 'ip', ['-n', ns, 'addr', 'add', v6 ? `${underlayIp}/64` : `${underlayIp}/24`, 'dev', 'eth0', ...(v6 ? ['nodad'] : [])]);
    await this.exec('', 'ip', ['-n', ns, 'link', 'set', 'eth0', 'up']);
    if (opts.bridge !== false) {
      await this.exec('', 'ip', ['-n', ns, 'link', 'add', 'br0', 'type', 'bridge']);
      // The host's own IPv6 chatter on br0 (RS, MLD) would be flooded over the overlay and blur counter checks.
      await this.exec(ns, 'sysctl', ['-qw', 'net.ipv6.conf.br0.disable_ipv6=1']);
      await this.exec('', 'ip', ['-n', ns, 'link', 'set', 'br0', 'up']);
    }
    const host = { name, ns, underlayIp, underlayMtu: Number(mtu) };
    this.hosts.set(name, host);
    return host;
  }

  /**
   * A container namespace whose `eth0` (overlayIp/15, given MTU) is plugged into the host's br0. IPv6 is off in
   * containers so that neighbour discovery and MLD chatter do not blur the counters tests assert on.
   */
  async addContainer(host: Host, name: string, overlayIp: string, mtu = UNDERLAY_MTU - 50): Promise<Container> {
    const ns = await this.addNs(name);
    await this.exec(ns, 'sysctl', ['-qw', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1']);
    await this.exec('', 'ip', ['link', 'add', 'eth0', 'netns', ns, 'mtu', String(mtu), 'type', 'veth', 'peer', 'name', name, 'netns', host.ns, 'mtu', String(mtu)]);
    await this.exec('', 'ip', ['-n', host.ns, 'link', 'set', name, 'master', 'br0', 'up']);
    await this.exec('', 'ip', ['-n', ns, 'addr', 'add', `${overlayIp}/15`, 'dev', 'eth0']);
    await this.exec('', 'ip', ['-n', ns, 'link', 'set', 'eth0', 'up']);
    const link = JSON.parse((await this.exec('', 'ip', ['-n', ns, '-j', 'link', 'show', 'eth0'])).stdout) as { address: string }[];
    return { name, ns, ip: overlayIp, mac: link[0]!.address };
  }

  /**
   * The kernel's VXLAN device as the reference VTEP: vx0 on br0, flooding to `peers`. Unless `offloads` (only right
   * when every peer is a kernel VTEP too), TX checksum offload goes off on vx0 and the underlay veth: veth would
   * leave inner TCP checksums unfinished for a userspace peer (LAB.md's checksum trap).
   */
  async addKernelVtep(host: Host, peers: readonly string[], opts: { vni?: number; offloads?: boolean } = {}): Promise<void> {
    const vni = opts.vni ?? VNI;
    const ip = (...a: string[]): Promise<ExecResult> => this.exec('', 'ip', ['-n', host.ns, ...a]);
    await ip('link', 'add', 'vx0', 'type', 'vxlan', 'id', String(vni), 'dstport', '4789', 'local', host.underlayIp, 'nolearning');
    const overhead = host.underlayIp.includes(':') ? 70 : 50;
    await ip('link', 'set', 'vx0', 'master', 'br0', 'mtu', String(host.underlayMtu - overhead), 'up');
    for (const p of peers) await this.exec(host.ns, 'bridge', ['fdb', 'append', '00:00:00:00:00:00', 'dev', 'vx0', 'dst', p]);
    if (opts.offloads === true) return;
    await this.exec(host.ns, 'ethtool', ['-K', 'vx0', 'tx', 'off']);
    await this.exec(host.ns, 'ethtool', ['-K', 'eth0', 'tx', 'off']);
  }

  /** Runs `vxlan-router up` in the host; resolves once it prints its ready line. */
  /** `vni: null` leaves the VNI to the etcd network definition (pass --etcd in `args`). */
  async startRouter(host: Host, opts: { peers: readonly string[]; engine: EngineName; vni?: number | null; args?: string[] }): Promise<RouterProcess> {
    const vni = opts.vni === null ? [] : ['--vni', String(opts.vni ?? VNI)];
    const args = [CLI_PATH, 'up', '--local', host.underlayIp, ...vni, '--bridge', 'br0', '--engine', opts.engine];
    for (const p of opts.peers) args.push('--peer', p);
    const router = new RouterProcess(this.spawn(host.ns, process.execPath, [...args, ...(opts.args ?? [])]));
    await router.nextLine((l) => l.startsWith('vxlan-router: ready'), 15_000, true);
    return router;
  }

  /** Pings from a namespace (`size`: ICMP payload bytes, sent with DF); returns the loss in percent and the average RTT in ms. */
  async ping(ns: string, ip: string, count = 3, size?: number): Promise<{ loss: number; avgMs: number; output: string }> {
    let out: string;
    const sized = size === undefined ? [] : ['-M', 'do', '-s', String(size)];
    try {
      out = (await this.exec(ns, 'ping', ['-c', String(count), '-i', '0.2', '-W', '2', ...sized, ip], 5000 + count * 2500)).stdout;
    } catch (err) {
      out = (err as Error).message;
    }
    const loss = /(\d+(?:\.\d+)?)% packet loss/.exec(out);
    const rtt = /= [\d.]+\/([\d.]+)\//.exec(out);
    return { loss: loss ? Number(loss[1]) : 100, avgMs: rtt ? Number(rtt[1]) : NaN, output: out };
  }

  /** Two containers joined by one veth (no bridge, no encapsulation): the physical limit the benchmarks compare to. */
  async addDirectPair(mtu = UNDERLAY_MTU): Promise<[Container, Container]> {
    const [n1, n2] = [await this.addNs('c1'), await this.addNs('c2')];
    await this.exec('', 'ip', ['link', 'add', 'eth0', 'netns', n1, 'mtu', String(mtu), 'type', 'veth', 'peer', 'name', 'eth0', 'netns', n2, 'mtu', String(mtu)]);
    const out: Container[] = [];
    for (const [i, ns] of [n1, n2].entries()) {
      await this.exec(ns, 'sysctl', ['-qw', 'net.ipv6.conf.all.disable_ipv6=1']);
      await this.exec('', 'ip', ['-n', ns, 'addr', 'add', `198.18.0.${i + 1}/15`, 'dev', 'eth0']);
      await this.exec('', 'ip', ['-n', ns, 'link', 'set', 'eth0', 'up']);
      const link = JSON.parse((await this.exec('', 'ip', ['-n', ns, '-j', 'link', 'show', 'eth0'])).stdout) as { address: string }[];
      out.push({ name: `c${i + 1}`, ns, ip: `198.18.0.${i + 1}`, mac: link[0]!.address });
    }
    return [out[0]!, out[1]!];
  }

  /** Kills what the lab started (by PID) and deletes its namespaces. Safe to call twice. */
  async destroy(): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    for (const p of this.processes) if (p.exitCode === null && p.signalCode === null) p.kill('SIGTERM');
    await waitFor(() => this.processes.every((p) => p.exitCode !== null || p.signalCode !== null), { timeoutMs: 5000 }).catch(() => {
      for (const p of this.processes) p.kill('SIGKILL');
    });
    for (const ns of this.namespaces.reverse()) await this.exec('', 'ip', ['netns', 'del', ns]).catch(() => undefined);
  }
}

export interface TwoHosts {
  readonly h1: Host;
  readonly h2: Host;
  readonly c1: Container;
  readonly c2: Container;
}

/**
 * The topology most labs start from: hosts h1 and h2 on the switch, containers c1 (198.18.0.1) and c2 (198.18.0.2)
 * behind their bridges, with the container MTU the overhead leaves (underlay − 50, or − 70 on an IPv6 underlay).
 */
export async function twoHosts(
  lab: Lab,
  underlay: readonly [string, string] = ['198.51.100.1', '198.51.100.2'],
  underlayMtu = UNDERLAY_MTU,
): Promise<TwoHosts> {
  const mtu = underlayMtu - (underlay[0].includes(':') ? 70 : 50);
  const h1 = await lab.addHost('h1', underlay[0], { mtu: underlayMtu });
  const h2 = await lab.addHost('h2', underlay[1], { mtu: underlayMtu });
  return { h1, h2, c1: await lab.addContainer(h1, 'c1', '198.18.0.1', mtu), c2: await lab.addContainer(h2, 'c2', '198.18.0.2', mtu) };
}

/** Polls `cond` until it holds (instead of sleeping a guessed time). */
export async function waitFor(cond: () => boolean | Promise<boolean>, opts: { timeoutMs: number; intervalMs?: number; what?: string }): Promise<void> {
  const end = Date.now() + opts.timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out after ${opts.timeoutMs} ms waiting for ${opts.what ?? 'a condition'}`);
    await new Promise((r) => setTimeout(r, opts.intervalMs ?? 50));
  }
}

/** Why a lab cannot run here, or undefined when it can (root, /dev/net/tun, the built CLI). */
export function labSkipReason(): string | undefined {
  if (process.getuid?.() !== 0) return 'lab tests need root (network namespaces, TAP devices); run as root, e.g. in CI';
  return undefined;
}
