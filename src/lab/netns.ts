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
import { execFile, spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, mkdtempSync, openSync, readFileSync, readSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { StringDecoder } from 'node:string_decoder';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { innerMtuLimit } from '../packet/index.js';

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

export type EngineName = 'native' | 'js';

/** Files a router writes its stdout and stderr to, so that it can outlive this process (demo --keep). */
export interface RouterOutput {
  readonly stdout: string;
  readonly stderr: string;
}

/** Follows files another process appends to (polled: they are small and this is a lab). */
class FileTail {
  private readonly offsets: [number, number] = [0, 0];
  private readonly decoders: [StringDecoder, StringDecoder] = [new StringDecoder('utf8'), new StringDecoder('utf8')];
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly paths: readonly [string, string],
    private readonly sinks: readonly [(chunk: string) => void, (chunk: string) => void],
  ) {
    this.timer = setInterval(() => this.poll(), 50);
  }

  /** Hands on whatever was appended since the last poll. */
  poll(): void {
    for (const i of [0, 1] as const) {
      let fd: number;
      try {
        fd = openSync(this.paths[i], 'r');
      } catch {
        continue; // removed under us (the lab was torn down): nothing more to read
      }
      const buf = Buffer.alloc(64 * 1024);
      try {
        let n = readSync(fd, buf, 0, buf.length, this.offsets[i]);
        while (n > 0) {
          this.offsets[i] += n;
          this.sinks[i](this.decoders[i].write(buf.subarray(0, n)));
          n = readSync(fd, buf, 0, buf.length, this.offsets[i]);
        }
      } finally {
        closeSync(fd);
      }
    }
  }

  stop(): void {
    clearInterval(this.timer);
    this.poll();
  }
}

export class RouterProcess {
  private readonly lines: string[] = [];
  private readonly waiters: { match: (l: string) => boolean; resolve: (l: string) => void }[] = [];
  private readonly tail: FileTail | undefined;
  private partial = '';
  readonly exited: Promise<number | null>;
  stderr = '';

  /** PID of the router itself (`ip netns exec` execs it, so this is the node process). */
  get pid(): number {
    return this.child.pid ?? -1;
  }

  /** Reads the router's output from its pipes, or from `output` when it writes to files. */
  constructor(readonly child: ChildProcess, readonly output?: RouterOutput) {
    if (output === undefined) {
      createInterface({ input: child.stdout! }).on('line', (line) => this.onLine(line));
      child.stderr!.on('data', (d: Buffer) => (this.stderr += d.toString()));
    } else {
      this.tail = new FileTail([output.stdout, output.stderr], [(c) => this.onStdout(c), (c) => (this.stderr += c)]);
    }
    // 'close' (not 'exit'): by then all of its output has been read, so a rejection can quote its stderr.
    this.exited = once(child, 'close').then(([code]) => {
      this.tail?.stop();
      return code as number | null;
    });
  }

  private onStdout(chunk: string): void {
    const parts = (this.partial + chunk).split('\n');
    this.partial = parts.pop() ?? '';
    for (const line of parts) this.onLine(line);
  }

  private onLine(line: string): void {
    this.lines.push(line);
    const i = this.waiters.findIndex((w) => w.match(line));
    if (i >= 0) this.waiters.splice(i, 1)[0]!.resolve(line);
  }

  /** Stops following the router and lets this process exit while it runs on (only for one started with `output`). */
  release(): void {
    this.tail?.stop();
    this.child.unref();
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

  /** The messages of the router's structured log lines (pino JSON on stderr) so far. */
  logs(): string[] {
    const msgs: string[] = [];
    for (const line of this.stderr.split('\n')) {
      try {
        const m = (JSON.parse(line) as { msg?: unknown }).msg;
        if (typeof m === 'string') msgs.push(m);
      } catch {
        /* not a log line (e.g. the one-line error of a failed start) */
      }
    }
    return msgs;
  }

  /** Resolves with the first log message (future, or past too if `past`) that matches; rejects on timeout. */
  async nextLog(match: (msg: string) => boolean, timeoutMs: number, past = false): Promise<string> {
    const skip = past ? 0 : this.logs().length;
    let found: string | undefined;
    await waitFor(() => (found = this.logs().slice(skip).find(match)) !== undefined, { timeoutMs, what: `a router log line (stderr so far: ${this.stderr.slice(-500)})` });
    return found!;
  }

  /** SIGUSR1 makes the router print `counters {json}`, `table {json}` and `offloads {json}`: the one with `prefix`. */
  private async report<T>(prefix: 'counters' | 'table' | 'offloads'): Promise<T> {
    const line = this.nextLine((l) => l.startsWith(`${prefix} `), 5000);
    this.child.kill('SIGUSR1');
    return JSON.parse((await line).slice(prefix.length + 1)) as T;
  }

  /** The peers of each VNI in the table the router forwards with now. */
  async peers(): Promise<Record<number, string[]>> {
    const t = await this.report<{ vnis: { vni: number; peers: string[] }[] }>('table');
    return Object.fromEntries(t.vnis.map((v) => [v.vni, [...v.peers].sort()]));
  }

  async counters(): Promise<Record<string, number>> {
    return this.report('counters');
  }

  /** The remote addresses (IPv4 and IPv6 → MAC) of each VNI in the table the router forwards with now. */
  async neighbors(): Promise<Record<number, { ip: string; mac: string }[]>> {
    const t = await this.report<{ vnis: { vni: number; neighbors?: { ip: string; mac: string }[] }[] }>('table');
    return Object.fromEntries(t.vnis.map((v) => [v.vni, v.neighbors ?? []]));
  }

  /** The offloads in use now ({ tapVnetHdr, udpGso, udpGro }). */
  async offloads(): Promise<Record<string, boolean>> {
    return this.report('offloads');
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
  private stateRoot: string | undefined;

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
      const { stdout, stderr } = await execFileP(argv[0]!, argv.slice(1), { timeout: timeoutMs, maxBuffer: 64 << 20 });
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
      const child = spawn('ip', ['netns', 'exec', ns, cmd, ...args], { stdio, detached: output !== undefined });
      this.processes.push(child);
      return child;
    } finally {
      for (const fd of fds) closeSync(fd);
    }
  }

  /** What `removeLab` needs to find this lab again from another process: its id, namespaces and the PIDs it started. */
  record(): LabRecord {
    const live = this.processes.filter((p) => p.pid !== undefined && p.exitCode === null && p.signalCode === null);
    return {
      id: this.id,
      namespaces: [...this.namespaces],
      processes: live.map((p) => ({ pid: p.pid!, cmdline: cmdline(p.pid!) })),
      ...(this.stateRoot !== undefined ? { stateRoot: this.stateRoot } : {}),
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
   * `output` sends its output to files (see `spawn`).
   */
  async startRouter(
    host: Host,
    opts: { peers: readonly string[]; engine: EngineName; vni?: number | null; args?: string[]; output?: RouterOutput },
  ): Promise<RouterProcess> {
    const vni = opts.vni === null ? [] : ['--vni', String(opts.vni ?? VNI)];
    // Every lab router has its own control socket: /run is shared by all namespaces.
    const socket = opts.args?.includes('--socket') ? [] : ['--socket', this.controlSocket(host)];
    const args = [CLI_PATH, 'up', '--local', host.underlayIp, ...vni, '--bridge', 'br0', '--engine', opts.engine, ...socket];
    for (const p of opts.peers) args.push('--peer', p);
    // Hosts of one lab share a filesystem: each keeps its etcd snapshot in a state dir of its own, removed with the lab.
    if (opts.args?.includes('--etcd') === true && !opts.args.includes('--state-dir')) args.push('--state-dir', this.stateDir(host));
    const child = this.spawn(host.ns, process.execPath, [...args, ...(opts.args ?? [])], opts.output);
    const router = new RouterProcess(child, opts.output);
    await router.nextLine((l) => l.startsWith('vxlan-router: ready'), 15_000, true);
    return router;
  }

  /** The control socket of the router `startRouter` runs in `host` (unless its args name another). */
  controlSocket(host: Pick<Host, 'name'>): string {
    return `/tmp/vxr${this.id}-${host.name}.sock`;
  }

  /** The state dir (etcd snapshot) of a host's router, the same across restarts within this lab. */
  stateDir(host: Host): string {
    this.stateRoot ??= mkdtempSync(join(tmpdir(), `vxr-state-${this.id}-`));
    return join(this.stateRoot, host.name);
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
   * then deletes the namespaces, newest first (which removes their links). Safe to call twice.
   */
  async destroy(): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    const own = this.processes.filter((p) => p.exitCode === null && p.signalCode === null).map((p) => p.pid!);
    await teardown([...this.namespaces].reverse(), own);
    // A router that exits cleanly removes its control socket; one a test killed with SIGKILL cannot.
    for (const host of this.hosts.values()) rmSync(this.controlSocket(host), { force: true });
    if (this.stateRoot !== undefined) rmSync(this.stateRoot, { recursive: true, force: true });
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

/** A lab as another process sees it: enough to tear it down later (`removeLab`). */
export interface LabRecord {
  readonly id: string;
  readonly namespaces: readonly string[];
  readonly processes: readonly { readonly pid: number; readonly cmdline: string }[];
  /** The routers' state directories (snapshots), under the system's temp dir. */
  readonly stateRoot?: string;
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

/** Stops `pids` and every process inside `namespaces`, then deletes the namespaces in the order given. */
async function teardown(namespaces: readonly string[], pids: readonly number[]): Promise<void> {
  const inside = await Promise.all(namespaces.map((ns) => namespacePids(ns)));
  const all = [...new Set([...pids, ...inside.flat()])];
  signal(all, 'SIGTERM');
  await waitFor(() => !all.some(alive), { timeoutMs: 5000, what: 'lab processes to exit' }).catch(() => signal(all.filter(alive), 'SIGKILL'));
  for (const ns of namespaces) await execFileP('ip', ['netns', 'del', ns], { timeout: 10_000 }).catch(() => undefined);
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

/** The command line of a process ('' when it is gone), to recognise it again later. */
function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
  } catch {
    return '';
  }
}
