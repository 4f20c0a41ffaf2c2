/**
 * `vxlan-router doctor`: the checks an operator would make by hand before (or while) running a router, each with
 * the fix when it fails. Works without a running router; with one, it also looks at what the router reports.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { createSocket } from 'node:dgram';
import { isIPv6 } from 'node:net';
import { loadNative } from '../dataplane/index.js';
import { VxlanRouterError } from '../errors.js';
import { overheadFor } from '../packet/index.js';
import type { Status } from './control-protocol.js';
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

/** Runs `check`; a VxlanRouterError it throws becomes a failed check whose fix is the error's message. */
function guard(name: string, okDetail: string, check: () => void): Check {
  try {
    check();
    return { check: name, status: 'ok', detail: okDetail };
  } catch (err) {
    if (!(err instanceof VxlanRouterError)) throw err;
    const [what, fix] = err.message.split(/: (.*)/s);
    return { check: name, status: 'fail', detail: what ?? err.message, ...(fix ? { fix } : {}) };
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
    const limit = underlay.mtu - overheadFor(isIPv6(input.local!) ? 6 : 4);
    const tapMtu = input.status?.mtu.tap ?? input.mtu ?? limit;
    checks.push(
      tapMtu > limit
        ? { check: 'mtu', status: 'fail', detail: `TAP MTU ${tapMtu} is above what ${underlay.device} (MTU ${underlay.mtu}) carries in VXLAN: ${limit}`, fix: `use --mtu ${limit}, or raise the underlay MTU to ${tapMtu + underlay.mtu - limit}` }
        : { check: 'mtu', status: 'ok', detail: `TAP MTU ${tapMtu} fits the underlay (${underlay.device} MTU ${underlay.mtu}: up to ${limit})` },
    );
    const bridge = input.bridge;
    if (bridge !== undefined && checks.every((c) => c.check !== 'bridge' || c.status === 'ok')) {
      const members = readdirSync(`/sys/class/net/${bridge}/brif`).filter((m) => m !== input.tap);
      const big = members.filter((m) => mtuOf(m) > tapMtu);
      checks.push(
        big.length > 0
          ? {
              check: 'bridge-mtu',
              status: 'fail',
              detail: `${big.map((m) => `${m} (MTU ${mtuOf(m)})`).join(', ')} on ${bridge} send frames larger than the overlay's ${tapMtu}: they are dropped`,
              fix: `set their MTU to ${tapMtu} (ip link set dev <name> mtu ${tapMtu}; for Docker: --opt com.docker.network.driver.mtu=${tapMtu})`,
            }
          : { check: 'bridge-mtu', status: 'ok', detail: `${members.length} member(s) of ${bridge} within MTU ${tapMtu}` },
      );
    }
    if (input.status === undefined) {
      const free = await portFree(input.local!, input.port);
      checks.push(
        free
          ? { check: 'port', status: 'ok', detail: `UDP ${input.local}:${input.port} is free` }
          : { check: 'port', status: 'fail', detail: `UDP ${input.local}:${input.port} is taken`, fix: `stop what holds it (ss -ulpn 'sport = :${input.port}') or use --port on every host` },
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
    const offloads = [s.offloads.tapVnetHdr && 'tap', s.offloads.udpGso && 'gso', s.offloads.udpGro && 'gro'].filter(Boolean).join(', ') || 'none';
    checks.push({ check: 'router', status: 'ok', detail: `${s.engine} engine on ${s.tap} is running (pid ${s.pid}), offloads: ${offloads}` });
  }
  return checks;
}

function safeDriver(dev: string): string {
  try {
    return execFileSync('ethtool', ['-i', dev], { encoding: 'utf8', timeout: 5000 });
  } catch {
    return '';
  }
}
