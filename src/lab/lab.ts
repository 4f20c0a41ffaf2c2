/**
 * A network lab in namespaces, for the tests, `npm run demo` and the benchmarks. Everything it creates lives in
 * namespaces named `vxr<id>-<name>` (id = PID + counter) and in one directory `<tmp>/vxr-lab-<id>-…` (its routers'
 * control sockets and state), so nothing touches the root namespace or the product's default places, two labs never
 * collide, and `destroy()` removes all of it (teardown.ts) and kills what it started.
 *
 *   [c1] eth0 ─veth─ c1 ┐                                   ┌ c2 ─veth─ eth0 [c2]
 *                       br0 ── TAP (vxlan-router) or vx0     br0 ── ...
 *                  [h1] eth0 198.51.100.1 ─veth─ h1 ┐       ┌ h2 ─veth─ eth0 198.51.100.2 [h2]
 *                                                   sw (bridge) [switch]
 *
 * Underlay 198.51.100.0/24, overlay 198.18.0.0/15 (the project's test ranges).
 */
import { execFile, spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, mkdtempSync, openSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
// The flags alone, from the module the CLI loads fast (not the agent's index, which loads the product).
import { NODE_FLAGS } from '../agent/control-protocol.js';
import { innerMtuLimit } from '../packet/index.js';
import { RouterProcess, type EngineName, type RouterOutput } from './router-process.js';
import { staleBuild } from './stale-build.js';
import { cmdline, labDirPrefix, teardown, type LabRecord } from './teardown.js';
import { waitFor } from './wait.js';

const execFileP = promisify(execFile);

/**
 * The environment of what a lab runs: ours without NODE_OPTIONS, which a test runner sets to load its own hooks into
 * every node process (tap's process-info import: ~1 s more per start on a loaded 2-core box, and routers that are not
 * what a user runs). Flags a router needs are given on its command line (NODE_FLAGS).
 */
function labEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  return env;
}

/** dist/cli.js, from src/lab (tests under tap) or dist/lab (demo, benchmarks). */
export const CLI_PATH = fileURLToPath(new URL('../../dist/cli.js', import.meta.url));
export const VNI = 42;
/**
 * A tcpdump filter for the routers' peer probes (docs/data-path.md#peer-probes: a UDP payload starting 00 'V' 'X'
 * 'P'), to leave them out of captures of data datagrams; IPv4 underlays (libpcap cannot index udp[] over IPv6).
 * The js engine sends them from a pool socket's port, not 4789, so a port filter does not catch them.
 */
export const PROBE_FILTER = '(udp[8:4] = 0x00565850)';
export const UNDERLAY_MTU = 1500;

let labCounter = 0;
/** Labs made by this process: VXLAN_ROUTER_LOOP=mixed starts every other one on the other loop (Lab.loopFor). */
let labsMade = 0;

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

/** A running tcpdump (see `Lab.capture`). */
export interface Capture {
  /** What it printed so far. */
  text(): string;
  /** Waits until it ends by itself (count or time limit); resolves with everything it printed. */
  done(): Promise<string>;
  /** Ends it now (SIGTERM: it flushes what it has); resolves with everything it printed. */
  stop(): Promise<string>;
}

export interface ExecResult {
  readonly stdout: string;
  readonly stderr: string;
}

export class Lab {
  readonly id: string;
  readonly hosts = new Map<string, Host>();
  private readonly namespaces: string[] = [];
  private readonly processes: ChildProcess[] = [];
  private switchNs: Promise<string> | undefined;
  private destroyed = false;
  /** Made on first use (see `dir`). */
  private ownDir: string | undefined;
  /** VXLAN_ROUTER_LOOP=mixed: per host, its order among the hosts and the native routers started on it so far. */
  private readonly loopTurns = new Map<string, { host: number; starts: number }>();
  private readonly loopBase = labsMade++ % 2;

  constructor(id = `${process.pid}-${labCounter++}`) {
    this.id = id;
  }

  nsName(name: string): string {
    return `vxr${this.id}-${name}`;
  }

  /** Runs a command inside a namespace (the root one when ns is ''), bounded in time. */
  async exec(ns: string, cmd: string, args: string[], timeoutMs = 30_000): Promise<ExecResult> {
    const argv = ns === '' ? [cmd, ...args] : ['ip', 'netns', 'exec', ns, cmd, ...args];
    try {
      const { stdout, stderr } = await execFileP(argv[0]!, argv.slice(1), { timeout: timeoutMs, maxBuffer: 64 << 20, env: labEnv() });
      return { stdout, stderr };
    } catch (err) {
      const e = err as { stderr?: string; message: string };
      throw new Error(`${argv.join(' ')}: ${e.stderr?.trim() || e.message}`);
    }
  }

  /**
   * Starts a long-running command in a namespace; destroy() kills it by PID. With `output` its stdout and stderr go
   * to those files and it runs in a session of its own, so that it can outlive this process (demo --keep).
   */
  spawn(ns: string, cmd: string, args: string[], output?: RouterOutput): ChildProcess {
    const fds = output === undefined ? [] : [openSync(output.stdout, 'a'), openSync(output.stderr, 'a')];
    const stdio: StdioOptions = output === undefined ? ['ignore', 'pipe', 'pipe'] : ['ignore', fds[0]!, fds[1]!];
    try {
      const child = spawn('ip', ['netns', 'exec', ns, cmd, ...args], { stdio, detached: output !== undefined, env: labEnv() });
      this.processes.push(child);
      return child;
    } finally {
      for (const fd of fds) closeSync(fd);
    }
  }

  /** What `removeLab` needs to find this lab again from another process: its id, namespaces, the PIDs it started, its directory. */
  record(): LabRecord {
    const live = this.processes.filter((p) => p.pid !== undefined && p.exitCode === null && p.signalCode === null);
    return {
      id: this.id,
      namespaces: [...this.namespaces],
      processes: live.map((p) => ({ pid: p.pid!, cmdline: cmdline(p.pid!) })),
      ...(this.ownDir !== undefined ? { dir: this.ownDir } : {}),
    };
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
    const host = { name, ns, underlayIp, underlayMtu: Number(mtu) };
    if (opts.bridge !== false) await this.addBridge(host, 'br0');
    this.hosts.set(name, host);
    return host;
  }

  /** A bridge in the host (br0 is made with it; more for routers serving several networks). */
  async addBridge(host: Pick<Host, 'ns'>, bridge: string): Promise<void> {
    await this.exec('', 'ip', ['-n', host.ns, 'link', 'add', bridge, 'type', 'bridge']);
    // The host's own IPv6 chatter on the bridge (RS, MLD) would be flooded over the overlay and blur counter checks.
    await this.exec(host.ns, 'sysctl', ['-qw', `net.ipv6.conf.${bridge}.disable_ipv6=1`]);
    await this.exec('', 'ip', ['-n', host.ns, 'link', 'set', bridge, 'up']);
  }

  /**
   * A container namespace whose `eth0` (overlayIp/15, given MTU) is plugged into the host's br0. IPv6 is off in
   * containers so that neighbour discovery and MLD chatter do not blur the counters tests assert on.
   */
  async addContainer(host: Host, name: string, overlayIp: string, mtu = UNDERLAY_MTU - 50, bridge = 'br0'): Promise<Container> {
    const ns = await this.addNs(name);
    await this.exec(ns, 'sysctl', ['-qw', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1']);
    await this.exec('', 'ip', ['link', 'add', 'eth0', 'netns', ns, 'mtu', String(mtu), 'type', 'veth', 'peer', 'name', name, 'netns', host.ns, 'mtu', String(mtu)]);
    await this.exec('', 'ip', ['-n', host.ns, 'link', 'set', name, 'master', bridge, 'up']);
    await this.exec('', 'ip', ['-n', ns, 'addr', 'add', `${overlayIp}/15`, 'dev', 'eth0']);
    await this.exec('', 'ip', ['-n', ns, 'link', 'set', 'eth0', 'up']);
    const link = JSON.parse((await this.exec('', 'ip', ['-n', ns, '-j', 'link', 'show', 'eth0'])).stdout) as { address: string }[];
    return { name, ns, ip: overlayIp, mac: link[0]!.address };
  }

  /**
   * Turns IPv6 on in a container (off by default, see addContainer) and gives its eth0 `ip`/`prefix`. No duplicate
   * address detection (neither for it nor for the link-local address) and no router solicitations: the addresses
   * are usable at once, and the only IPv6 a container sends unasked are MLD reports.
   */
  async addIpv6(c: Container, ip: string, prefix = 64): Promise<void> {
    const conf = (key: string, value: number): string => `net.ipv6.conf.eth0.${key}=${value}`;
    await this.exec(c.ns, 'sysctl', ['-qw', conf('accept_dad', 0), conf('dad_transmits', 0), conf('router_solicitations', 0), conf('accept_ra', 0)]);
    await this.exec(c.ns, 'sysctl', ['-qw', conf('disable_ipv6', 0)]);
    await this.exec('', 'ip', ['-n', c.ns, 'addr', 'add', `${ip}/${prefix}`, 'dev', 'eth0', 'nodad']);
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
    await ip('link', 'set', 'vx0', 'master', 'br0', 'mtu', String(innerMtuLimit(host.underlayMtu, host.underlayIp)), 'up');
    for (const p of peers) await this.exec(host.ns, 'bridge', ['fdb', 'append', '00:00:00:00:00:00', 'dev', 'vx0', 'dst', p]);
    if (opts.offloads === true) return;
    await this.exec(host.ns, 'ethtool', ['-K', 'vx0', 'tx', 'off']);
    await this.exec(host.ns, 'ethtool', ['-K', 'eth0', 'tx', 'off']);
  }

  /**
   * Runs `vxlan-router up` in the host; resolves once it prints its ready line, rejects with its stderr if it exits
   * first or stays silent for 15 s. `vni: null` leaves the VNI to the etcd network definition (pass --etcd in `args`);
   * `output` sends its output to files (see `spawn`); `cli` runs another build's dist/cli.js (an upgrade).
   */
  async startRouter(
    host: Host,
    opts: { peers: readonly string[]; engine: EngineName; vni?: number | null; args?: string[]; output?: RouterOutput; readyTimeoutMs?: number; cli?: string; nodeFlags?: readonly string[] },
  ): Promise<RouterProcess> {
    // This build's routers run dist/ and the addon: stale, they would run old code (and a test wait for what never comes).
    const stale = opts.cli === undefined ? staleBuild() : undefined;
    if (stale !== undefined) throw new Error(stale);
    const extra = opts.args ?? [];
    const vni = opts.vni === null ? [] : ['--vni', String(opts.vni ?? VNI)];
    // Namespaces share the filesystem: the default socket dir and state dir are the machine's (a real router's, or
    // another lab's), so each lab router gets its own, removed with the lab. Metrics only where a test scrapes them.
    const unlessGiven = (flag: string, value: string): string[] => (extra.includes(flag) ? [] : [flag, value]);
    const args = [opts.cli ?? CLI_PATH, 'up', '--local', host.underlayIp, ...vni, '--bridge', 'br0', '--engine', opts.engine];
    args.push(...unlessGiven('--socket', this.controlSocket(host)), ...unlessGiven('--state-dir', this.stateDir(host)), ...unlessGiven('--metrics', 'off'));
    for (const p of opts.peers) args.push('--peer', p);
    const loop = opts.engine === 'native' && opts.cli === undefined && !extra.includes('--loop') ? this.loopFor(host) : undefined;
    if (loop !== undefined) args.push('--loop', loop);
    args.push(...extra);
    const child = this.spawn(host.ns, process.execPath, [...NODE_FLAGS, ...(opts.nodeFlags ?? []), ...args], opts.output);
    const router = new RouterProcess(child, args[args.lastIndexOf('--socket') + 1]!, opts.output);
    await router.nextLine((l) => l.startsWith('vxlan-router: ready'), opts.readyTimeoutMs ?? 15_000, true);
    return router;
  }

  /**
   * The event loop of this build's next native router in `host` (a test's own --loop wins), from VXLAN_ROUTER_LOOP:
   * unset, the product's default; uring, threads or auto, that one for every router; `mixed` (what `npm test` runs),
   * both by turns, so that every lab runs both loops and they talk to each other: the first host gets uring, the
   * second threads, and so on, and each further router on a host (a restart, a takeover) the other loop than the
   * last one there: a takeover hands over from one loop to the other. Every other lab a process makes starts with
   * threads instead, so that a file of one-router labs (a router against the kernel's VXLAN) runs both too.
   */
  private loopFor(host: Pick<Host, 'name'>): string | undefined {
    const loop = process.env.VXLAN_ROUTER_LOOP;
    if (loop !== 'mixed') return loop || undefined;
    let turn = this.loopTurns.get(host.name);
    if (turn === undefined) this.loopTurns.set(host.name, (turn = { host: this.loopTurns.size, starts: 0 }));
    return (this.loopBase + turn.host + turn.starts++) % 2 === 0 ? 'uring' : 'threads';
  }

  /** The control socket of the router `startRouter` runs in `host` (unless its args name another). */
  controlSocket(host: Pick<Host, 'name'>): string {
    return join(this.dir(), `${host.name}.sock`);
  }

  /** The state dir (etcd snapshot) of a host's router, the same across restarts within this lab. */
  stateDir(host: Pick<Host, 'name'>): string {
    return join(this.dir(), `${host.name}-state`);
  }

  /** The lab's directory in the temp dir, made on first use: everything its routers write, removed with the lab. */
  private dir(): string {
    this.ownDir ??= mkdtempSync(join(tmpdir(), labDirPrefix(this.id)));
    return this.ownDir;
  }

  /**
   * tcpdump on `dev` inside `ns`, bounded by `seconds` (and `count` packets if given); resolves once it listens.
   * Text output (`-A` adds payloads) unless `pcap` names a file to write.
   */
  async capture(ns: string, dev: string, filter: readonly string[], opts: { seconds: number; count?: number; ascii?: boolean; pcap?: string }): Promise<Capture> {
    // -l / -U: each packet is written at once (line- or packet-buffered), so text() is current and nothing is lost at stop().
    const args = [String(opts.seconds), 'tcpdump', '-i', dev, '-n', ...(opts.pcap === undefined ? ['-l'] : ['-U', '-w', opts.pcap])];
    if (opts.count !== undefined) args.push('-c', String(opts.count));
    if (opts.ascii === true) args.push('-A');
    const child = this.spawn(ns, 'timeout', [...args, ...filter]);
    const seen = { out: '', err: '' };
    child.stdout!.on('data', (d: Buffer) => (seen.out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (seen.err += d.toString()));
    const closed = once(child, 'close');
    await waitFor(() => seen.err.includes('listening on') || child.exitCode !== null, { timeoutMs: 5000, what: `tcpdump on ${ns} ${dev}` });
    if (!seen.err.includes('listening on')) throw new Error(`tcpdump on ${ns} ${dev}: ${seen.err.trim()}`);
    return {
      text: () => seen.out,
      done: async () => {
        await closed;
        return seen.out;
      },
      stop: async () => {
        if (child.exitCode === null) child.kill('SIGTERM');
        await closed;
        return seen.out;
      },
    };
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

  /**
   * Kills what the lab started and whatever still runs inside its namespaces (by PID: SIGTERM, SIGKILL after 5 s),
   * deletes the namespaces, newest first (which removes their links), then its directory (with the control socket
   * of a router a test killed with SIGKILL, which could not remove it). Safe to call twice.
   */
  async destroy(): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    const pids = this.processes.filter((p) => p.exitCode === null && p.signalCode === null).map((p) => p.pid!);
    await teardown({ namespaces: [...this.namespaces].reverse(), pids, dir: this.ownDir });
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
  const mtu = innerMtuLimit(underlayMtu, underlay[0]);
  const h1 = await lab.addHost('h1', underlay[0], { mtu: underlayMtu });
  const h2 = await lab.addHost('h2', underlay[1], { mtu: underlayMtu });
  return { h1, h2, c1: await lab.addContainer(h1, 'c1', '198.18.0.1', mtu), c2: await lab.addContainer(h2, 'c2', '198.18.0.2', mtu) };
}

/** Why a lab cannot run here (it needs root), or undefined when it can. */
export function labSkipReason(): string | undefined {
  if (process.getuid?.() !== 0) return 'lab tests need root (network namespaces, TAP devices); run as root, e.g. in CI';
  return undefined;
}
