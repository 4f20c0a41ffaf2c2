/**
 * `vxlan-router doctor`: the checks an operator would make by hand before (or while) running a router, each with
 * the fix when it fails. Works without a running router; with one, it also looks at what the router reports.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { createSocket } from 'node:dgram';
import { isIPv6 } from 'node:net';
import { openRegistry } from '../control/index.js';
import { loadNative } from '../dataplane/index.js';
import { describeError, VxlanRouterError } from '../errors.js';
import { DEFAULT_TAP_MTU, innerMtuLimit } from '../packet/index.js';
import { offloadNames, type Status } from './control-protocol.js';
import { checkBridge, checkPrivileges, checkTun, findUnderlay, type Underlay } from './preflight.js';

export interface DoctorInput {
  readonly local?: string;
  readonly bridge?: string;
  readonly mtu?: number;
  readonly port: number;
  readonly engine: 'native' | 'js';
  /** The TAP of a router already running (its own bridge port: left out of the MTU comparison). */
  readonly tap?: string;
  /** What a running router reports, if one answers. */
  readonly status?: Status;
  /** Which interface holds an address (default: the native addon's getifaddrs lookup). */
  readonly interfaceOf?: (address: string) => string | null;
  /** etcd to check when no router runs (with one, its own control-plane state is checked): endpoints and network. */
  readonly etcd?: { readonly endpoints: readonly string[]; readonly network: string };
}

export interface Check {
  readonly check: string;
  /** fail: the router cannot work (or loses traffic) like this; warn: it works, but read the detail. */
  readonly status: 'ok' | 'warn' | 'fail';
  readonly detail: string;
  /** What to do about it (failed or warned checks). */
  readonly fix?: string;
}

const mtuOf = (dev: string): number => Number(readFileSync(`/sys/class/net/${dev}/mtu`, 'utf8').trim());

/** Runs `check`; a VxlanRouterError it throws becomes a failed check: its message the detail, its hint the fix. */
function guard(name: string, okDetail: string, check: () => void): Check {
  try {
    check();
    return { check: name, status: 'ok', detail: okDetail };
  } catch (err) {
    if (!(err instanceof VxlanRouterError)) throw err;
    return { check: name, status: 'fail', detail: err.message, ...(err.hint !== undefined ? { fix: err.hint } : {}) };
  }
}

async function portFree(local: string, port: number): Promise<boolean> {
  const sock = createSocket(isIPv6(local) ? 'udp6' : 'udp4');
  return new Promise((resolve) => {
    sock.once('error', () => (sock.close(), resolve(false)));
    sock.bind(port, local, () => sock.close(() => resolve(true)));
  });
}

/** tx-checksumming of a device as ethtool reports it (undefined when ethtool cannot tell). */
function txChecksumming(dev: string): boolean | undefined {
  try {
    const m = /^tx-checksumming: (on|off)/m.exec(execFileSync('ethtool', ['-k', dev], { encoding: 'utf8', timeout: 5000 }));
    return m ? m[1] === 'on' : undefined;
  } catch {
    return undefined;
  }
}

/**
 * On a Docker host br_netfilter hands bridged frames to iptables' FORWARD chain, whose policy dockerd sets to DROP
 * and where only Docker's own bridges get an ACCEPT: frames between the TAP and the containers of a plain bridge are
 * then dropped, silently. Pure: `nfCall` is /proc/sys/net/bridge/bridge-nf-call-iptables (undefined: br_netfilter
 * not loaded), `rules` is `iptables -S FORWARD` (undefined: no iptables).
 */
export function bridgeFirewallCheck(bridge: string, nfCall: string | undefined, rules: string | undefined): Check | undefined {
  if (nfCall?.trim() !== '1' || rules === undefined) return undefined;
  const lines = rules.split('\n').map((l) => l.trim());
  if (!lines.includes('-P FORWARD DROP') && !lines.some((l) => /^-A FORWARD .*-j (DROP|REJECT)\b/.test(l) && !/ -[io] /.test(l))) {
    return { check: 'bridge-firewall', status: 'ok', detail: `bridged frames on ${bridge} pass iptables FORWARD (policy ACCEPT)` };
  }
  const escaped = bridge.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const accepts = lines.some((l) => new RegExp(`^-A FORWARD -i ${escaped} -o ${escaped} (.* )?-j ACCEPT$`).test(l) || new RegExp(`^-A FORWARD (.* )?-m physdev .*-j ACCEPT$`).test(l));
  return accepts
    ? { check: 'bridge-firewall', status: 'ok', detail: `iptables FORWARD drops by default, and accepts ${bridge} → ${bridge}` }
    : {
        check: 'bridge-firewall',
        status: 'fail',
        detail: `br_netfilter sends frames bridged on ${bridge} through iptables FORWARD, which drops them (policy DROP, as dockerd sets it) and has no ACCEPT for ${bridge}: frames between the TAP and its containers are lost`,
        fix: `iptables -I FORWARD -i ${bridge} -o ${bridge} -j ACCEPT (and ip6tables), or use a Docker network (vxlan-router docker-network create, or the plugin: -d vxlan-router), whose bridge Docker lets through`,
      };
}

function readOr(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

function iptablesForward(): string | undefined {
  try {
    return execFileSync('iptables', ['-S', 'FORWARD'], { encoding: 'utf8', timeout: 5000, stdio: ['ignore', 'pipe', 'ignore'] });
  } catch {
    return undefined;
  }
}

export async function runDoctor(input: DoctorInput): Promise<Check[]> {
  const checks: Check[] = [
    guard('privileges', 'CAP_NET_ADMIN and CAP_NET_RAW', () => checkPrivileges(input.engine === 'native')),
    guard('tun', '/dev/net/tun present', () => checkTun()),
  ];
  if (input.bridge !== undefined) checks.push(guard('bridge', `${input.bridge} is a bridge`, () => checkBridge(input.bridge!)));

  let underlay: Underlay | undefined;
  if (input.local !== undefined) {
    const local = input.local;
    const interfaceOf = input.interfaceOf ?? ((a: string) => loadNative().interfaceOf(a));
    checks.push(guard('underlay', `${local} is on this host`, () => (underlay = findUnderlay(local, interfaceOf))));
  }
  if (underlay !== undefined) {
    const limit = innerMtuLimit(underlay.mtu, input.local!);
    const tapMtu = input.status?.mtu.tap ?? input.mtu ?? DEFAULT_TAP_MTU;
    // A TAP MTU above the path's is the default: the router, not the bridge, refuses what does not fit, and tells
    // the sender (ICMP too-big with the limit), so path MTU discovery works instead of a silent drop.
    checks.push(
      tapMtu > limit
        ? { check: 'mtu', status: 'ok', detail: `${underlay.device} (MTU ${underlay.mtu}) carries IP packets up to ${limit} in VXLAN; larger ones from the bridge (TAP MTU ${tapMtu}) are answered with ICMP too-big (mtu ${limit})` }
        : { check: 'mtu', status: 'ok', detail: `TAP MTU ${tapMtu} fits the underlay (${underlay.device} MTU ${underlay.mtu}: up to ${limit})` },
    );
    const bridge = input.bridge;
    if (bridge !== undefined && checks.every((c) => c.check !== 'bridge' || c.status === 'ok')) {
      const members = readdirSync(`/sys/class/net/${bridge}/brif`).filter((m) => m !== input.tap);
      const big = members.filter((m) => mtuOf(m) > tapMtu);
      const overPath = members.filter((m) => mtuOf(m) > limit && mtuOf(m) <= tapMtu);
      const fit = Math.min(tapMtu, limit);
      checks.push(
        big.length > 0
          ? {
              check: 'bridge-mtu',
              status: 'fail',
              detail: `${big.map((m) => `${m} (MTU ${mtuOf(m)})`).join(', ')} on ${bridge} send frames larger than the TAP's MTU ${tapMtu}: the bridge drops them, unanswered`,
              fix: `set their MTU to ${fit} (ip link set dev <name> mtu ${fit}; for Docker: --opt com.docker.network.driver.mtu=${fit}), or leave the TAP MTU at its default (no --mtu)`,
            }
          : overPath.length > 0
            ? {
                check: 'bridge-mtu',
                status: 'warn',
                detail: `${overPath.map((m) => `${m} (MTU ${mtuOf(m)})`).join(', ')} on ${bridge} above the path's ${limit}: TCP and DF traffic adapts (ICMP too-big), larger UDP without DF is dropped (tx_too_big)`,
                fix: `for no extra round trip, set their MTU to ${limit} (for Docker: --opt com.docker.network.driver.mtu=${limit})`,
              }
            : { check: 'bridge-mtu', status: 'ok', detail: `${members.length} member(s) of ${bridge} within MTU ${fit}` },
      );
    }
    if (bridge !== undefined && checks.every((c) => c.check !== 'bridge' || c.status === 'ok')) {
      const firewall = bridgeFirewallCheck(bridge, readOr('/proc/sys/net/bridge/bridge-nf-call-iptables'), iptablesForward());
      if (firewall !== undefined) checks.push(firewall);
    }
    if (input.status === undefined) {
      const free = await portFree(input.local!, input.port);
      checks.push(
        free
          ? { check: 'port', status: 'ok', detail: `UDP ${input.local}:${input.port} is free` }
          : portTaken(input.local!, input.port),
      );
    }
    const tx = underlay.device.startsWith('lo') ? undefined : txChecksumming(underlay.device);
    const veth = readFileSync(`/sys/class/net/${underlay.device}/uevent`, 'utf8').includes('DEVTYPE=veth') || /veth/.test(safeDriver(underlay.device));
    if (veth && tx === true) {
      checks.push({
        check: 'veth-checksum',
        status: 'warn',
        detail: `${underlay.device} is a veth with TX checksum offload on: fine between vxlan-routers; a kernel VXLAN peer on this underlay sends inner TCP with unfinished checksums`,
        fix: `on kernel VXLAN peers: ethtool -K <underlay> tx off`,
      });
    }
  }
  if (input.status !== undefined) {
    const s = input.status;
    const offloads = offloadNames(s.offloads).join(', ') || 'none';
    checks.push({ check: 'router', status: 'ok', detail: `${s.engine} engine on ${s.tap} is running (pid ${s.pid}), offloads: ${offloads}` });
    checks.push(...routerChecks(s));
  } else if (input.etcd !== undefined) {
    checks.push(await etcdCheck(input.etcd.endpoints, input.etcd.network));
  }
  return checks;
}

/** Seconds a peer may stay silent, while we send to it, before doctor calls it one-way. */
const SILENT_PEER_S = 10;

/** What only a running router can tell: its etcd state and lease, MACs claimed twice, refused and silent peers. */
export function routerChecks(s: Status, now = Date.now()): Check[] {
  const checks: Check[] = [];
  const cp = s.controlPlane;
  if (cp.mode === 'etcd') {
    const awayS = cp.since === undefined ? 0 : Math.max(0, Math.round((now - Date.parse(cp.since)) / 1000));
    const ttl = cp.leaseTtlSeconds ?? 15;
    const where = `etcd ${cp.endpoints.join(', ')}`;
    if (cp.state === 'connected') {
      checks.push({ check: 'etcd', status: 'ok', detail: `connected to ${where} since ${cp.since}, revision ${cp.revision}, ${cp.hosts} hosts` });
    } else if (cp.state === 'starting') {
      checks.push({ check: 'etcd', status: 'warn', detail: `not joined ${where} yet (${awayS} s)`, fix: `check that ${where} answers from here (etcdctl --endpoints ${cp.endpoints.join(',')} endpoint health)` });
    } else {
      checks.push({
        check: 'etcd',
        status: 'fail',
        detail:
          awayS >= ttl
            ? `${where} unreachable for ${awayS} s, longer than the lease TTL (${ttl} s): the other hosts have dropped this one and flood nothing to it; forwarding goes on with the last table`
            : `${where} unreachable for ${awayS} s: the lease (TTL ${ttl} s) expires in ${ttl - awayS} s, then the other hosts drop this one`,
        fix: `restore the path to etcd (etcdctl --endpoints ${cp.endpoints.join(',')} endpoint health); the router re-joins by itself`,
      });
    }
  }
  for (const n of s.networks) {
    if (n.bridgeMissingSince) {
      checks.push({
        check: 'bridge',
        status: 'fail',
        detail: `bridge ${n.bridge} missing since ${n.bridgeMissingSince}: VNI ${n.vni} reaches no container here; TAP ${n.tap} is kept and joins the bridge when one of that name appears`,
        fix: `create the bridge again (ip link add ${n.bridge} type bridge && ip link set ${n.bridge} up, or docker network create for a Docker network); the router needs no restart`,
      });
    }
  }
  for (const n of s.networks) {
    if (n.name === null || cp.state !== 'connected') continue;
    if (n.range !== null) {
      checks.push({ check: 'address-range', status: 'ok', detail: `network ${n.name}: this host's range ${n.range} (gateway ${n.gateway}) for Docker's IPAM` });
    } else if (n.rangeReason === 'exhausted') {
      checks.push({
        check: 'address-range',
        status: 'warn',
        detail: `network ${n.name}: no address range for this host (${n.rangeNote}); forwarding is not affected, but Docker networks here have no range of their own`,
        fix: `free the slices of hosts that are gone for good (etcdctl get --prefix /vxlan-router/v1/networks/${n.name}/ranges/ shows who holds which; etcdctl del the key), or redefine the network with a longer --host-prefix`,
      });
    }
  }
  for (const c of s.macConflicts) {
    checks.push({
      check: 'mac-conflict',
      status: 'fail',
      detail: `MAC ${c.mac} (VNI ${c.vni}) is advertised by ${c.hostIds.length} hosts: ${c.hostIds.join(', ')}; traffic goes to ${c.hostIds[0]} only`,
      fix: `give the containers distinct MACs (docker run --mac-address, or let Docker pick one), or remove the stale one on ${c.hostIds.slice(1).join(', ')}`,
    });
  }
  for (const c of s.addressConflicts ?? []) {
    const others = c.claimants.map((x) => `${x.mac} on ${x.hostId}${x.advertised ? '' : ' (refused by this host)'}`).join(', ');
    checks.push({
      check: 'address-conflict',
      status: 'fail',
      detail: `address ${c.ip} (VNI ${c.vni}) belongs to MAC ${c.owner.mac} on ${c.owner.hostId}, and is also claimed by ${others}; ARP / ND answer with ${c.owner.mac}`,
      fix: `a container uses an address that is not its own (forged, or a duplicate): find ${c.claimants.map((x) => x.mac).join(', ')} with \`vxlan-router fdb\` on ${[...new Set(c.claimants.map((x) => x.hostId))].join(', ')} and stop it or give it its own address`,
    });
  }
  for (const r of s.refusedSources) {
    checks.push({
      check: 'outer-source',
      status: 'fail',
      detail: `${r.count} datagram(s) of VNI ${r.vni} from ${r.address} refused (last ${Math.round(r.agoMs / 1000)} s ago): it is not a VTEP of that VNI here`,
      fix: `if ${r.address} is a peer sending from another address than it advertises (several addresses, NAT), start it with --local ${r.address}; else add it with --peer ${r.address}, or find what else sends VXLAN here`,
    });
  }
  const silent = s.peers.filter((p) => p.txFrames > 0 && (p.lastSeenAgoMs === null || p.lastSeenAgoMs > SILENT_PEER_S * 1000));
  if (silent.length > 0) {
    checks.push({
      check: 'peers',
      status: 'warn',
      detail: `sending to ${silent.map((p) => p.address).join(', ')} but nothing heard from ${silent.length === 1 ? 'it' : 'them'} for ${SILENT_PEER_S} s or more`,
      fix: `run doctor on ${silent.length === 1 ? 'that host' : 'those hosts'}: a refused outer source (this host's datagrams arrive from another address than ${s.local}), a firewall on UDP ${s.port}, or no router there`,
    });
  } else if (s.peers.length > 0) {
    checks.push({ check: 'peers', status: 'ok', detail: `${s.peers.length} peer(s), none silent while we send to it` });
  }
  checks.push(...reachability(s));
  return checks;
}

/**
 * Peers the router probes (src/dataplane/peer-health.ts) that are down: registered (etcd) or configured (--peer),
 * but no probe answered for 3 intervals and, if they never answered, nothing heard from them either. One failed
 * check names each.
 */
function reachability(s: Status): Check[] {
  const byAddress = new Map<string, Status['peers'][number] & { vnis: number[] }>();
  for (const p of s.peers) {
    const seen = byAddress.get(p.address);
    if (seen === undefined) byAddress.set(p.address, { ...p, vnis: [p.vni] });
    else seen.vnis.push(p.vni);
  }
  const probed = [...byAddress.values()].filter((p) => p.state !== undefined && p.state !== null);
  if (probed.length === 0) return [];
  const down = probed.filter((p) => p.state === 'down');
  if (down.length === 0) {
    const unknown = probed.filter((p) => p.state === 'unknown').length;
    return [{ check: 'peer-reachable', status: 'ok', detail: `${probed.length - unknown} of ${probed.length} peer(s) answer probes${unknown > 0 ? `; ${unknown} unknown (a VTEP that does not answer probes, e.g. the kernel's, whose traffic arrives; or probed too briefly)` : ''}` }];
  }
  return down.map((p) => ({
    check: 'peer-reachable',
    status: 'fail' as const,
    detail:
      `peer ${p.address} (VNI ${p.vnis.join(',')}${p.hostId !== null ? `, host ${p.hostId}` : ''}) is registered but unreachable: ` +
      (p.lastAnswerAgoMs === null || p.lastAnswerAgoMs === undefined
        ? `it never answered a probe and nothing was heard from it${p.lastSeenAgoMs !== null ? ' for a minute' : ''}`
        : `its last answer to a probe was ${Math.round(p.lastAnswerAgoMs / 1000)} s ago`) +
      // Its datagrams still arriving while our probes go unanswered: the path is open one way only.
      (p.lastSeenAgoMs !== null && p.lastSeenAgoMs < 60_000 && (p.lastAnswerAgoMs ?? Infinity) > p.lastSeenAgoMs
        ? `; yet its VXLAN datagrams still arrive here (last ${Math.round(p.lastSeenAgoMs / 1000)} s ago): UDP ${s.port} is open from it to us but not from us to it (a firewall on its side, or on the way)`
        : ''),
    fix: `on ${p.address}: is a router running (vxlan-router status)? Is UDP ${s.port} open both ways between ${s.local} and ${p.address} (iptables / nft, security groups)? Is ${p.address} really its underlay address (a wrong --local, or an address behind NAT, registers an address nobody answers on)?`,
  }));
}

/** Without a running router: is etcd reachable, and is the network defined? */
async function etcdCheck(endpoints: readonly string[], network: string): Promise<Check> {
  const registry = await openRegistry({ endpoints: [...endpoints], callTimeoutMs: 3000 });
  try {
    const def = await registry.getNetwork(network);
    return def === undefined
      ? { check: 'etcd', status: 'fail', detail: `etcd ${endpoints.join(', ')} answers, but network ${network} is not defined`, fix: `vxlan-router network create ${network} --vni <N> --subnet <CIDR> --etcd ${endpoints.join(',')}` }
      : { check: 'etcd', status: 'ok', detail: `etcd ${endpoints.join(', ')} answers; network ${network} is VNI ${def.vni}, subnet ${def.subnet}` };
  } catch (err) {
    return { check: 'etcd', status: 'fail', detail: `etcd ${endpoints.join(', ')}: ${describeError(err)}`, fix: `check the endpoints and that etcd runs (etcdctl --endpoints ${endpoints.join(',')} endpoint health)` };
  } finally {
    await registry.close();
  }
}

/** Kernel VXLAN devices of this namespace listening on `port` (they hold it without a process to show in ss). */
function kernelVxlanOn(port: number): string[] {
  try {
    const links = JSON.parse(execFileSync('ip', ['-d', '-j', 'link', 'show', 'type', 'vxlan'], { encoding: 'utf8', timeout: 5000 })) as {
      ifname: string;
      linkinfo?: { info_data?: { port?: number } };
    }[];
    return links.filter((l) => l.linkinfo?.info_data?.port === port).map((l) => l.ifname);
  } catch {
    return [];
  }
}

function portTaken(local: string, port: number): Check {
  const vx = kernelVxlanOn(port);
  return vx.length > 0
    ? {
        check: 'port',
        status: 'fail',
        detail: `UDP ${local}:${port} is taken by the kernel VXLAN device ${vx.join(', ')} (it listens on every address)`,
        fix: `remove it (ip link del ${vx[0]}) or move it to another dstport; one VTEP per port`,
      }
    : { check: 'port', status: 'fail', detail: `UDP ${local}:${port} is taken`, fix: `stop what holds it (ss -ulpn 'sport = :${port}') or use --port on every host` };
}

function safeDriver(dev: string): string {
  try {
    return execFileSync('ethtool', ['-i', dev], { encoding: 'utf8', timeout: 5000 });
  } catch {
    return '';
  }
}
