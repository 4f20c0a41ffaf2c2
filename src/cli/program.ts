/**
 * The command line: argv in, text out, an exit code. Parsing is commander's; validation is the config schema's, so a
 * bad flag and a bad config key get the same kind of message.
 */
import type { ChildProcess } from 'node:child_process';
import { isIP } from 'node:net';
import { Command, CommanderError, Option } from 'commander';
// Only the light parts of the agent at start (`status` and friends must answer quickly); the rest (etcd client,
// engines, metrics: ~0.5 s of module loading) is imported by the commands that use it.
import { DEFAULT_DNS_ADDRESS, DEFAULT_DOCKER_SOCKET, DEFAULT_PLUGIN_SOCKET, MAX_VNI, VERSION, type Method, type Result } from '../agent/control-protocol.js';
import { RUN_DIR, STATE_DIR, buildConfig, ENGINES, ETCD_PASSWORD_ENV, etcdClientConfig, LOOPS, OFFLOADS, type EtcdClientConfig, type EtcdOptionValues, type RawConfig } from '../config/index.js';
import { ConfigError, VxlanRouterError } from '../errors.js';

const agent = (): Promise<typeof import('../agent/index.js')> => import('../agent/index.js');
import { ask, findSocket } from './control-client.js';
import { formatChecks, formatCounters, formatFdb, formatPeers, formatStatus, formatTable, formatWhy, onlyVni, type ShowFlags } from './format.js';

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

/** Integers are converted here only when they look like integers; anything else reaches the schema's message. */
function integerOrRaw(value: string): number | string {
  return /^-?\d+$/.test(value) ? Number(value) : value;
}

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/** Ends the command with this exit status, having said all there is to say already. */
class ExitStatus extends Error {
  constructor(readonly status: number) {
    super(`exit ${status}`);
  }
}

interface DoctorFlags {
  local?: string;
  bridge?: string;
  mtu?: number | string;
  port?: number | string;
  engine?: string;
  socket?: string;
  etcd?: string;
  network?: string;
  json?: boolean;
}

interface UpFlags {
  local?: string;
  takeover?: boolean;
  vni?: number | string;
  bridge?: string;
  peer?: string[];
  tap?: string;
  port?: number | string;
  mtu?: number | string;
  engine?: string;
  learning: boolean;
  arpSuppression: boolean;
  clampMss?: number | string | true;
  offloads?: string | false;
  loop?: string;
  aging?: number | string;
  learnMaxPerPeer?: number | string;
  probeInterval?: number | string;
  learnMax?: number | string;
  sourceCheck: boolean;
  maxLocalMacs?: number | string;
  config?: string;
  etcd?: string;
  network?: string[];
  hostId?: string;
  leaseTtl?: number | string;
  socket?: string;
  metrics?: string;
  dockerPlugin?: string | true;
  dns?: string | true;
  docker?: boolean;
  dockerSocket?: string;
  logLevel?: string;
  stateDir?: string;
  etcdCa?: string;
  etcdCert?: string;
  etcdKey?: string;
  etcdUser?: string;
  etcdPassword?: string;
}

/** `--offloads all|none|tap,gso` (or `--no-offloads`: false) → the list the schema checks. */
function offloadList(v: string | false | undefined): string[] | undefined {
  if (v === undefined) return undefined;
  if (v === false || v === 'none') return [];
  if (v === 'all') return [...OFFLOADS];
  return v.split(',').filter(Boolean);
}

/** The etcd connection flags, shared by `up` and `network create`. */
function addEtcdConnectionOptions(cmd: Command): Command {
  return cmd
    .option('--etcd-ca <file>', 'TLS: CA certificate (PEM) that signed etcd\'s certificate (https:// endpoints)')
    .option('--etcd-cert <file>', 'TLS: client certificate (PEM), with --etcd-key')
    .option('--etcd-key <file>', 'TLS: client private key (PEM), with --etcd-cert')
    .option('--etcd-user <name>', 'etcd user (with --etcd-password or VXLAN_ROUTER_ETCD_PASSWORD)')
    .option('--etcd-password <password>', 'etcd password (prefer VXLAN_ROUTER_ETCD_PASSWORD: argv is visible to other users)');
}

/** `--network n` (one network on --bridge), or `--network a:br-a --network b:br-b` (several, each on its bridge). */
function networkFlags(values: string[] | undefined): Pick<RawConfig, 'network' | 'networks'> {
  if (values === undefined) return {};
  if (values.length === 1 && !values[0]!.includes(':')) return { network: values[0] };
  return {
    networks: values.map((v) => {
      const [name, bridge] = v.split(':', 2);
      return bridge ? { name, bridge } : { name };
    }),
  };
}

/** `--etcd a,b` → ['a', 'b']. */
const endpoints = (v: string | undefined): string[] | undefined => (v === undefined ? undefined : v.split(',').filter(Boolean));

/** The etcd connection of a command that needs one (--etcd and the connection flags). */
function connectionOf(f: { etcd: string } & Omit<EtcdOptionValues, 'etcd'>): EtcdClientConfig {
  const envPassword = process.env[ETCD_PASSWORD_ENV];
  const connection = etcdClientConfig({
    etcd: endpoints(f.etcd) ?? [],
    etcdCa: f.etcdCa,
    etcdCert: f.etcdCert,
    etcdKey: f.etcdKey,
    etcdUser: f.etcdUser,
    etcdPassword: f.etcdPassword ?? (envPassword === '' ? undefined : envPassword),
  });
  if (connection === undefined) throw new VxlanRouterError('E_CONFIG', '--etcd names no endpoint');
  return connection;
}

export function buildProgram(io: { out: (line: string) => void; err: (line: string) => void }): Command {
  const program = new Command('vxlan-router')
    .description('Userspace VXLAN (RFC 7348) overlay router: joins a local bridge to remote VTEPs over UDP/4789')
    .version(VERSION)
    .showHelpAfterError()
    .exitOverride(); // before adding subcommands, so they inherit it: usage errors exit 2, not process.exit(1)

  const up = program
    .command('up')
    .description('run the router in the foreground until SIGINT/SIGTERM, then remove its TAP and exit')
    .option('--local <ip>', 'underlay address of this host (IPv4 or IPv6)')
    .option('--vni <n>', 'VXLAN network identifier (1-16777215); with --etcd, from the network', integerOrRaw)
    .option('--bridge <name>', 'local bridge the TAP joins (e.g. a Docker bridge network)')
    .option('--peer <ip>', 'underlay address of a remote VTEP (repeat for each)', collect)
    .option('--tap <name>', 'TAP device name (default: vxr<VNI>)')
    .option('--port <n>', 'UDP port of every VTEP (default: 4789)', integerOrRaw)
    .option('--mtu <n>', 'TAP MTU (default: 65000; the path limit, underlay MTU - 50 or - 70 for IPv6, is enforced by the router with ICMP too-big answers)', integerOrRaw)
    .addOption(new Option('--engine <kind>', 'data path: native (default) or js (reference)').choices(ENGINES))
    .option('--no-learning', 'do not learn remote MACs from inbound traffic')
    .option('--no-arp-suppression', 'flood ARP requests and IPv6 Neighbor Solicitations even for addresses known from etcd')
    .option('--clamp-mss [mss]', 'lower the MSS of TCP SYNs crossing the overlay (both ways) to mss, or bare: to the path MTU - 40 (IPv4) / - 60 (IPv6) (default: off)', integerOrRaw)
    .option('--offloads <list>', 'native engine offloads: all (default), none, or a list of tap,gso,gro')
    .option('--no-offloads', 'the same as --offloads none')
    .addOption(new Option('--loop <kind>', 'native engine event loop: auto (default: uring where the kernel allows it, else threads), uring (one thread on io_uring; falls back to threads where io_uring is missing or forbidden) or threads (a receive thread and a thread per TAP)').choices(LOOPS))
    .option('--aging <seconds>', 'seconds a learned MAC lives without traffic (default: 300)', integerOrRaw)
    .option('--learn-max-per-peer <n>', 'learned MACs per network and peer; more new sources are dropped (default: 4096)', integerOrRaw)
    .option('--learn-max <n>', 'learned MACs in all (default: 65536)', integerOrRaw)
    .option('--no-source-check', "accept inbound frames whose source MAC is this host's or another host's (etcd/static)")
    .option('--max-local-macs <n>', 'local MACs (bridge sources) kept and advertised per network; more are counted as local_mac_refused (default: 1024)', integerOrRaw)
    .option('--probe-interval <seconds>', 'seconds between probes of each peer: state, RTT, loss, path MTU (default: 5; 0: no probing)', integerOrRaw)
    .option('--config <file>', 'YAML config file with the same keys (flags override it)')
    .option('--takeover', 'hitless restart/upgrade: take over the router running on the same --socket (its UDP socket, TAPs, table, learned MACs and etcd records) without losing frames; it then exits')
    .option('--etcd <urls>', 'etcd endpoints, comma-separated: peers (and the VNI) come from the registry')
    .option('--network <name[:bridge]>', 'overlay network to join in etcd (default: default); repeat with name:bridge to serve several', collect)
    .option('--host-id <id>', 'this host in the registry (default: machine id + local address)')
    .option('--lease-ttl <seconds>', 'how long a crashed host stays in the others\' tables (default: 15)', integerOrRaw)
    .option('--socket <path>', `control socket for status/fdb/peers/counters/table (default: ${RUN_DIR}/<tap>.sock; in a named network namespace ${RUN_DIR}/netns/<name>/<tap>.sock)`)
    .option('--log-level <level>', 'structured logs on stderr: fatal, error, warn, info (default), debug, trace, silent')
    .option('--metrics <host:port>', 'Prometheus metrics at http://<host:port>/metrics, or off (default: 127.0.0.1:9477)')
    .option('--docker-plugin [socket]', `serve Docker's network and IPAM plugin (docker network create -d vxlan-router --ipam-driver vxlan-router) on this socket (default: ${DEFAULT_PLUGIN_SOCKET})`)
    .option('--dns [address]', `answer container names of every host (name, name.<network>) on this address, for docker run --dns / compose dns: (default: ${DEFAULT_DNS_ADDRESS})`)
    .option('--docker', `one step per Docker host (with --etcd): serve every network defined in etcd (bridge vxr-<name> unless --network names one), the plugin, and a Docker network of each name on dockerd`)
    .option('--docker-socket <path>', `dockerd's API socket, for --docker and --dns (default: ${DEFAULT_DOCKER_SOCKET})`)
    .option('--state-dir <dir>', `where the etcd table snapshot is kept, for starting while etcd is down (default: ${STATE_DIR}; in a named network namespace ${STATE_DIR}/netns/<name>)`);
  addEtcdConnectionOptions(up)
    .action(async (flags: UpFlags, cmd: Command) => {
      const raw: RawConfig = {
        local: flags.local,
        vni: flags.vni,
        bridge: flags.bridge,
        peers: flags.peer,
        tap: flags.tap,
        port: flags.port,
        mtu: flags.mtu,
        engine: flags.engine,
        learning: cmd.getOptionValueSource('learning') === 'cli' ? flags.learning : undefined,
        arpSuppression: cmd.getOptionValueSource('arpSuppression') === 'cli' ? flags.arpSuppression : undefined,
        clampMss: flags.clampMss,
        offloads: offloadList(flags.offloads),
        loop: flags.loop,
        agingSeconds: flags.aging,
        learnMaxPerPeer: flags.learnMaxPerPeer,
        learnMax: flags.learnMax,
        sourceCheck: cmd.getOptionValueSource('sourceCheck') === 'cli' ? flags.sourceCheck : undefined,
        maxLocalMacs: flags.maxLocalMacs,
        probeInterval: flags.probeInterval,
        etcd: endpoints(flags.etcd),
        ...networkFlags(flags.network),
        hostId: flags.hostId,
        leaseTtl: flags.leaseTtl,
        socket: flags.socket,
        metrics: flags.metrics,
        dockerPlugin: flags.dockerPlugin === true || (flags.dockerPlugin === undefined && flags.docker === true) ? DEFAULT_PLUGIN_SOCKET : flags.dockerPlugin,
        docker: flags.docker,
        dns: flags.dns === true ? DEFAULT_DNS_ADDRESS : flags.dns,
        dockerSocket: flags.dockerSocket,
        logLevel: flags.logLevel,
        stateDir: flags.stateDir,
        etcdCa: flags.etcdCa,
        etcdCert: flags.etcdCert,
        etcdKey: flags.etcdKey,
        etcdUser: flags.etcdUser,
        etcdPassword: flags.etcdPassword,
      };
      const env = process.env;
      const config = buildConfig(flags.config === undefined ? { flags: raw, env } : { file: flags.config, flags: raw, env });
      // Whoever read the ready line may go away (`restart` does): a daemon never dies of a closed stdout.
      process.stdout.on('error', () => undefined);
      const { createLogger } = await import('../log.js');
      const { Daemon } = await agent();
      const { spawn } = await import('node:child_process');
      // `up --docker` serves networks defined later through a new process with these options (daemon.ts: respawn).
      const respawn = (): ChildProcess => {
        const child = spawn(process.execPath, [...process.execArgv, process.argv[1]!, ...process.argv.slice(2).filter((a) => a !== '--takeover'), '--takeover'], { stdio: ['ignore', 'inherit', 'inherit'], detached: true });
        child.unref();
        return child;
      };
      const daemon = await Daemon.start(config, { log: createLogger(config.logLevel), takeover: flags.takeover === true, respawn });
      await daemon.run(io.out);
    });

  // `restart`: systemd's ExecReload (and an operator's upgrade) in one command. The new router is this build's, started
  // beside the old one with --takeover; this command returns once it is ready (or with its error, the old one still
  // running), and leaves it running.
  program
    .command('restart')
    .description('hitless restart or upgrade: start this build\'s `up <options> --takeover` beside the running router and return once it has taken over (give the options `up` was given)')
    .allowUnknownOption()
    .allowExcessArguments()
    .helpOption(false)
    .argument('[up-options...]')
    .action(async (upOptions: string[]) => {
      const { spawn } = await import('node:child_process');
      const { fileURLToPath } = await import('node:url');
      const cli = fileURLToPath(new URL('../cli.js', import.meta.url));
      const child = spawn(process.execPath, [...process.execArgv, cli, 'up', ...upOptions, '--takeover'], { stdio: ['ignore', 'pipe', 'inherit'], detached: true });
      const ready = await new Promise<string | null>((resolve) => {
        let out = '';
        child.stdout!.on('data', (d: Buffer) => {
          out += d.toString();
          const line = out.split('\n').find((l) => l.startsWith('vxlan-router: ready'));
          if (line !== undefined) resolve(line);
        });
        child.once('exit', () => resolve(null));
      });
      if (ready === null) throw new VxlanRouterError('E_CONTROL', `the new router exited (status ${child.exitCode}) before taking over; the running one goes on`, { hint: 'its error is above' });
      // The ready line is the new router's last word on stdout: it may outlive this command's end of the pipe.
      child.stdout!.destroy();
      child.unref();
      io.out(`vxlan-router: restarted, pid ${child.pid}: ${ready.replace('vxlan-router: ', '')}`);
    });

  // The operator's commands: ask the running router over its control socket.
  const show = <M extends Method>(method: M, description: string, text: (r: Result<M>, f: ShowFlags) => string[]): void => {
    const cmd = program
      .command(method)
      .description(description)
      .option('--socket <path>', `the router's control socket (default: the only one in ${RUN_DIR}, or ${RUN_DIR}/netns/<name> in a named network namespace)`)
      .option('--json', 'machine-readable output (the schema in src/agent/control-protocol.ts)');
    if (method === 'fdb' || method === 'peers' || method === 'table') cmd.option('--vni <n>', 'only this VNI', integerOrRaw);
    cmd.action(async (f: ShowFlags) => {
        if (f.vni !== undefined && (typeof f.vni !== 'number' || f.vni < 1 || f.vni > MAX_VNI)) {
          throw new ConfigError(`--vni: ${JSON.stringify(f.vni)} is not a VNI`, { hint: `pass an integer from 1 to ${MAX_VNI}` });
        }
        const result = await ask(findSocket(f.socket), method);
        if (f.json === true) io.out(JSON.stringify(onlyVni(method, result, f.vni), null, 2));
        else for (const line of text(onlyVni(method, result, f.vni), f)) io.out(line);
      });
  };
  show('status', 'engine, network, MTU, offloads, control plane, peers, counters of the running router', formatStatus);
  show('fdb', 'the forwarding table: (VNI, MAC) → VTEP, with origin and age', formatFdb);
  show('peers', 'remote VTEPs: address, port, VNIs, where they come from', formatPeers);
  show('counters', 'every data-path counter by name: traffic, offload work and drops by reason', formatCounters);
  show('table', 'what the control planes handed the data path, per VNI: peers, MACs (with origin) and neighbours', formatTable);

  program
    .command('why <target>')
    .description('what happens to frames to a MAC or overlay address (table entry, origin, age, VTEP, last heard, path MTU) and to datagrams from an underlay address (accepted or refused, and why), with the drop counters they hit')
    .option('--vni <n>', 'only this VNI', integerOrRaw)
    .option('--socket <path>', `the router's control socket (default: the only one in ${RUN_DIR})`)
    .option('--from <mac|ip>', 'the sender whose flow the outer source port is shown for (default: a container on this host\'s bridge)')
    .option('--flow <proto:sport:dport>', 'that flow\'s TCP or UDP ports, e.g. tcp:40000:80 (default: ping)')
    .option('--json', 'machine-readable output (whySchema in src/agent/control-protocol.ts)')
    .action(async (target: string, f: ShowFlags & { from?: string; flow?: string }) => {
      if (f.vni !== undefined && (typeof f.vni !== 'number' || f.vni < 1 || f.vni > MAX_VNI)) {
        throw new ConfigError(`--vni: ${JSON.stringify(f.vni)} is not a VNI`, { hint: `pass an integer from 1 to ${MAX_VNI}` });
      }
      if (!/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i.test(target) && isIP(target) === 0) {
        throw new ConfigError(`why: "${target}" is neither a MAC (aa:bb:cc:dd:ee:ff) nor an IP address`, { hint: 'pass a container MAC, an overlay address or a peer\'s underlay address' });
      }
      if (f.from !== undefined && !/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i.test(f.from) && isIP(f.from) === 0) {
        throw new ConfigError(`--from: "${f.from}" is neither a MAC nor an IP address`, { hint: 'pass a container\'s MAC or address' });
      }
      const flow = f.flow === undefined ? undefined : /^(tcp|udp):(\d{1,5}):(\d{1,5})$/.exec(f.flow);
      if (flow === null || (flow !== undefined && (Number(flow[2]) > 65535 || Number(flow[3]) > 65535))) {
        throw new ConfigError(`--flow: "${f.flow}" is not proto:sport:dport`, { hint: 'e.g. --flow tcp:40000:80 (tcp or udp, ports 0-65535)' });
      }
      const result = await ask(findSocket(f.socket), 'why', 5000, {
        target,
        ...(typeof f.vni === 'number' ? { vni: f.vni } : {}),
        ...(f.from !== undefined ? { from: f.from } : {}),
        ...(flow !== undefined ? { flow: { proto: flow[1] as 'tcp' | 'udp', sport: Number(flow[2]), dport: Number(flow[3]) } } : {}),
      });
      if (f.json === true) io.out(JSON.stringify(result, null, 2));
      else for (const line of formatWhy(result)) io.out(line);
    });

  program
    .command('doctor')
    .description('check what a router needs here (privileges, /dev/net/tun, bridge, MTUs, UDP port, offload traps); exit 1 if a check fails')
    .option('--local <ip>', 'underlay address the router uses (default: the running router\'s)')
    .option('--bridge <name>', 'the bridge it joins (default: the running router\'s)')
    .option('--mtu <n>', 'the TAP MTU it would use (default: 65000)', integerOrRaw)
    .option('--port <n>', 'UDP port (default: 4789)', integerOrRaw)
    .addOption(new Option('--engine <kind>', 'data path it would use').choices(ENGINES))
    .option('--socket <path>', `a running router's control socket (default: the only one of this network namespace, if any)`)
    .option('--etcd <urls>', 'without a running router: check that etcd answers and defines --network (comma-separated)')
    .option('--network <name>', 'the etcd network (default: default)')
    .option('--json', 'machine-readable output')
    .action(async (f: DoctorFlags) => {
      // A running router, if one answers: its settings fill in what was not given.
      const status = await (async () => ask(findSocket(f.socket), 'status', 3000))().catch((err: unknown) => {
        // Asked for that one, or several run here and doctor cannot know which: say so. None, or one that does not
        // answer: check this host without a router.
        if (f.socket !== undefined || (err instanceof VxlanRouterError && err.kind === 'several-routers')) throw err;
        return undefined;
      });
      const num = (v: unknown, key: string): number | undefined => {
        if (v === undefined) return undefined;
        if (typeof v !== 'number') throw new ConfigError(`--${key}: ${JSON.stringify(v)} is not an integer`);
        return v;
      };
      const { runDoctor } = await agent();
      const checks = await runDoctor({
        local: f.local ?? status?.local,
        bridge: f.bridge ?? status?.bridge,
        mtu: num(f.mtu, 'mtu'),
        port: num(f.port, 'port') ?? status?.port ?? 4789,
        engine: (f.engine as 'native' | 'js' | undefined) ?? status?.engine ?? 'native',
        ...(status ? { tap: status.tap, status } : {}),
        ...(f.etcd !== undefined ? { etcd: { endpoints: f.etcd.split(',').filter(Boolean), network: f.network ?? 'default' } } : {}),
      });
      if (f.json === true) io.out(JSON.stringify(checks, null, 2));
      else for (const line of formatChecks(checks)) io.out(line);
      if (checks.some((c) => c.status === 'fail')) throw new ExitStatus(EXIT_FAILURE);
    });

  const network = program.command('network').description('overlay networks defined in etcd');
  const create = network
    .command('create <name>')
    .description('define a network once (VNI, overlay subnet); refuses to change an existing one without --force')
    .requiredOption('--etcd <urls>', 'etcd endpoints, comma-separated')
    .requiredOption('--vni <n>', 'VXLAN network identifier (1-16777215)', integerOrRaw)
    .requiredOption('--subnet <cidr>', 'overlay subnet, e.g. 198.18.0.0/15')
    .option('--mtu <n>', 'TAP MTU for every host (default: each host derives it from its underlay)', integerOrRaw)
    .option('--port <n>', 'UDP port (default: 4789)', integerOrRaw)
    .option('--host-prefix <n>', "prefix length of each host's address range for Docker (default: /24 in a /20 or wider subnet, else 16 slices)", integerOrRaw)
    .option('--force', 'replace a different existing definition');
  addEtcdConnectionOptions(create)
    .action(async (name: string, f: { etcd: string; vni: unknown; subnet: string; mtu?: unknown; port?: unknown; hostPrefix?: unknown; force?: boolean } & Omit<EtcdOptionValues, 'etcd'>) => {
      const input = { name, vni: f.vni, subnet: f.subnet, mtu: f.mtu, port: f.port, ...(f.hostPrefix !== undefined ? { hostPrefix: f.hostPrefix } : {}) };
      const { createNetwork } = await agent();
      const { outcome, network: n } = await createNetwork(connectionOf(f), input, f.force === true);
      io.out(`network ${name} ${outcome} (VNI ${n.vni}, ${n.subnet})`);
    });

  const remove = network
    .command('rm <name>')
    .description('remove a network everywhere (its definition and every record in etcd); refused while any host has containers on it')
    .requiredOption('--etcd <urls>', 'etcd endpoints, comma-separated');
  addEtcdConnectionOptions(remove).action(async (name: string, f: { etcd: string } & Omit<EtcdOptionValues, 'etcd'>) => {
    const { removeNetwork } = await agent();
    await removeNetwork(connectionOf(f), name);
    io.out(`network ${name} removed`);
  });

  program
    .command('cni-config <network>')
    .description("print a CNI conflist (bridge + host-local on this host's slice, its gateway and MTU, portmap) for nerdctl/containerd, from the running router")
    .option('--socket <path>', `the router's control socket (default: the only one in ${RUN_DIR})`)
    .action(async (name: string, f: { socket?: string }) => {
      const status = await ask(findSocket(f.socket), 'status');
      const { cniConflist } = await agent();
      const n = status.networks.find((x) => x.name === name);
      if (n === undefined) throw new ConfigError(`the router does not serve network ${name} (it serves ${status.networks.map((x) => x.name ?? x.vni).join(', ')})`, { hint: `serve it: vxlan-router up … --network ${name}:BRIDGE, or --docker` });
      if (n.subnet == null || n.range === null || n.gateway === null) throw new ConfigError(`network ${name} has no address range on this host yet${n.rangeNote ? ` (${n.rangeNote})` : ''}`, { hint: 'try again once the router has leased one (vxlan-router status)' });
      const slice = { range: n.range, gateway: n.gateway, addresses: 0 };
      io.out(JSON.stringify(cniConflist({ network: name, vni: n.vni, bridge: n.bridge, subnet: n.subnet, slice, mtu: n.containerMtu ?? n.mtu }), null, 2));
    });

  const docker = program.command('docker-network').description("Docker bridge networks that are this host's part of an overlay network");
  const dockerCreate = docker
    .command('create <network>')
    .description("create (through dockerd's API) a bridge network on the overlay's subnet, handing out only this host's leased range")
    .requiredOption('--etcd <urls>', 'etcd endpoints, comma-separated')
    .requiredOption('--local <ip>', 'underlay address of this host (the same as for `up`: it names the host and sets the MTU)')
    .option('--host-id <id>', 'this host in the registry (default: machine id + local address, as `up`)')
    .option('--bridge <name>', 'Linux bridge name (default: vxr-<network>)')
    .option('--name <name>', 'Docker network name (default: vxr-<network>)')
    .option('--docker-socket <path>', `dockerd's API socket (default: ${DEFAULT_DOCKER_SOCKET})`)
    .option('--json', 'print the Docker network as JSON');
  addEtcdConnectionOptions(dockerCreate)
    .action(async (network: string, f: { etcd: string; local: string; hostId?: string; bridge?: string; name?: string; dockerSocket?: string; json?: boolean } & Omit<EtcdOptionValues, 'etcd'>) => {
      const { createDockerNetwork } = await agent();
      const { outcome, spec, hostId } = await createDockerNetwork(connectionOf(f), {
        network,
        local: f.local,
        ...(f.hostId !== undefined ? { hostId: f.hostId } : {}),
        ...(f.bridge !== undefined ? { bridge: f.bridge } : {}),
        ...(f.name !== undefined ? { dockerName: f.name } : {}),
        ...(f.dockerSocket !== undefined ? { socketPath: f.dockerSocket } : {}),
      });
      if (f.json === true) {
        io.out(JSON.stringify({ outcome, hostId, ...spec }, null, 2));
        return;
      }
      io.out(`docker network ${spec.name} ${outcome}: bridge ${spec.bridge}, subnet ${spec.subnet}, ip-range ${spec.ipRange} (this host's), gateway ${spec.gateway}, mtu ${spec.mtu}`);
      io.out(`next: vxlan-router up --local ${f.local} --bridge ${spec.bridge} --etcd ${f.etcd} --network ${network}${f.hostId !== undefined ? ` --host-id ${f.hostId}` : ''}`);
    });

  return program;
}

export async function runCli(argv: string[]): Promise<number> {
  const io = { out: (l: string) => process.stdout.write(`${l}\n`), err: (l: string) => process.stderr.write(`${l}\n`) };
  const program = buildProgram(io);
  try {
    await program.parseAsync(argv);
    return EXIT_OK;
  } catch (err) {
    if (err instanceof ExitStatus) return err.status;
    if (err instanceof VxlanRouterError) {
      io.err(`vxlan-router: error [${err.code}]: ${err.describe()}`);
      return err.code === 'E_CONFIG' ? EXIT_USAGE : EXIT_FAILURE;
    }
    if (err instanceof CommanderError) {
      // commander already printed its message (or the help/version text).
      return err.exitCode === 0 ? EXIT_OK : EXIT_USAGE;
    }
    io.err(`vxlan-router: internal error: ${(err as Error).stack ?? String(err)}`);
    return EXIT_FAILURE;
  }
}
